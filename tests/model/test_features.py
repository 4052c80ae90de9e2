"""The feature contract: names, encoding of answers, missing values and its hash."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from screening.model.features import DOMAINS, EncodingError, FeatureContract, default_contract


@pytest.fixture(scope="module")
def contract() -> FeatureContract:
    return default_contract()


def test_names_are_unique_and_ethnicity_is_never_a_feature(contract: FeatureContract) -> None:
    assert len(set(contract.names)) == len(contract.names)
    assert not [n for n in contract.names if "ethnic" in n]
    for d in DOMAINS:
        assert set(contract.domain_features[d]) <= set(contract.names)


def test_every_feature_has_a_plain_words_label(contract: FeatureContract) -> None:
    assert contract.by_name["bjmhs_8"].label.startswith("Has been in hospital for mental health")
    assert all(f.label and f.label != f.name for f in contract.features)


def test_items_are_encoded_as_points_so_higher_is_more_severe(contract: FeatureContract) -> None:
    x = contract.encode({"audit_9": 2, "dast10_3": False, "phq9_1": 3, "bjmhs_8": True}, age=None, sex=None)
    assert x[contract.index["audit_9"]] == 4.0  # AUDIT item 9 options score 0, 2, 4
    assert x[contract.index["dast10_3"]] == 1.0  # "no, cannot stop" scores the point
    assert x[contract.index["phq9_1"]] == 3.0
    assert x[contract.index["bjmhs_8"]] == 1.0


def test_missing_answers_and_partial_totals_are_nan(contract: FeatureContract) -> None:
    x = contract.encode({"phq9_1": 1}, age=None, sex=None)
    assert math.isnan(x[contract.index["phq9_2"]])
    assert math.isnan(x[contract.index["phq9_total"]])
    assert math.isnan(x[contract.index["age"]])
    assert math.isnan(x[contract.index["sex_female"]])


def test_audit_items_skipped_by_skip_logic_count_as_zero_in_the_total(contract: FeatureContract) -> None:
    answers = {"audit_1": 1, "audit_2": 1, "audit_3": 1}
    x = contract.encode(answers, age=30, sex="male")
    assert x[contract.index["auditc_total"]] == 3.0
    assert x[contract.index["audit_total"]] == 3.0
    assert math.isnan(x[contract.index["audit_4"]])
    assert contract.unasked(answers) == {f"audit_{i}" for i in range(4, 11)}
    # Once AUDIT-C reaches 5, items 4-10 must be asked, so a gap makes the AUDIT total unknown.
    heavy = {"audit_1": 3, "audit_2": 1, "audit_3": 1}
    assert math.isnan(contract.encode(heavy, age=30, sex="male")[contract.index["audit_total"]])
    assert contract.unasked(heavy) == set()


def test_age_is_clipped_and_sex_is_two_indicators(contract: FeatureContract) -> None:
    x = contract.encode({}, age=104, sex="female")
    assert x[contract.index["age"]] == 90.0
    assert (x[contract.index["sex_female"]], x[contract.index["sex_other"]]) == (1.0, 0.0)
    x = contract.encode({}, age=30, sex="unknown")
    assert math.isnan(x[contract.index["sex_female"]])


@pytest.mark.parametrize(
    ("answers", "sex"),
    [({"phq9_1": 4}, None), ({"phq9_1": True}, None), ({"bjmhs_1": 1}, None), ({}, "alien")],
)
def test_invalid_values_are_refused(contract: FeatureContract, answers: dict[str, Any], sex: str | None) -> None:
    with pytest.raises(EncodingError):
        contract.encode(answers, age=30, sex=sex)


def test_answer_order_does_not_change_the_vector(contract: FeatureContract) -> None:
    a = {"phq9_1": 2, "gad7_3": 1, "audit_1": 4, "ldc_ld_team": True}
    b = dict(reversed(list(a.items())))
    np.testing.assert_array_equal(contract.encode(a, age=40, sex="male"), contract.encode(b, age=40, sex="male"))


def test_contract_hash_is_stable_and_tracks_the_feature_list(contract: FeatureContract) -> None:
    again = FeatureContract(contract.registry)
    assert again.contract_hash() == contract.contract_hash()
    assert len(contract.contract_hash()) == 64
    again.features = again.features[:-1]
    assert again._compute_hash() != contract.contract_hash()


def test_slots_index_values_and_put_missing_last(contract: FeatureContract) -> None:
    x = contract.encode({"audit_9": 1}, age=None, sex="male")
    d = "substance_misuse"
    slots = contract.slots(d, x[contract.domain_index[d]])
    names = contract.domain_features[d]
    assert slots[names.index("audit_9")] == 1  # points 2 is the second of 0, 2, 4
    assert slots[names.index("audit_10")] == 3  # missing: after the three values
    assert slots[names.index("age")] == len(contract.by_name["age"].values)
