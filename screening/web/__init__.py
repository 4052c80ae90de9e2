"""The tablet web app for custody nurses and the court's report view, served by the service itself."""
