"""The list of court information reports a court user may open."""
