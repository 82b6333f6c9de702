"""QuestionnaireResponses are checked against the hub's Questionnaires: linkIds, answer types,
ranges and the scores the mappings compute."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.validation import Profiles

from ._examples import HUB, errors, read_json, write_json


def _answer(response: dict, link_id: str) -> dict:
    for item in response["item"]:
        if item["linkId"] == link_id:
            return item["answer"][0]
    raise KeyError(link_id)


def _drop(response: dict, *link_ids: str) -> None:
    response["item"] = [i for i in response["item"] if i["linkId"] not in link_ids]


def test_phq9_total_that_is_not_the_sum_is_rejected(profiles: Profiles, phq9: dict) -> None:
    _answer(phq9, "phq9-total")["valueInteger"] = 12
    (issue,) = profiles.check(phq9)
    assert issue.rule == "phq-9: phq9-total is the sum of phq9-1..phq9-9"
    assert issue.message == "phq9-total is 12 but the items sum to 11"

    _answer(phq9, "phq9-total")["valueInteger"] = 11
    assert profiles.check(phq9) == []


def test_gad7_total_that_is_not_the_sum_is_rejected(profiles: Profiles, gad7: dict) -> None:
    _answer(gad7, "gad7-total")["valueInteger"] = 7
    assert errors(profiles, gad7) == ["gad-7: gad7-total is the sum of gad7-1..gad7-7"]


def test_total_is_not_checked_when_an_item_is_unanswered(profiles: Profiles, phq9: dict) -> None:
    _drop(phq9, "phq9-3")
    _answer(phq9, "phq9-total")["valueInteger"] = 10
    assert profiles.check(phq9) == []


def test_total_may_be_left_out(profiles: Profiles, phq9: dict) -> None:
    _drop(phq9, "phq9-total")
    assert profiles.check(phq9) == []


@pytest.mark.parametrize("score", [0, 8])
def test_dialog_item_out_of_range_is_rejected(profiles: Profiles, dialog: dict, score: int) -> None:
    _answer(dialog, "mental_health")["valueInteger"] = score
    issues = profiles.check(dialog)
    assert issues[0].rule == "dialog: mental_health in 1..7"
    assert issues[0].path == "QuestionnaireResponse.item[0].answer[0].valueInteger"
    assert f"answer {score}" in issues[0].message


def test_phq9_item_out_of_range_is_rejected(profiles: Profiles, phq9: dict) -> None:
    _answer(phq9, "phq9-9")["valueInteger"] = 4
    assert "phq-9: phq9-9 in 0..3" in errors(profiles, phq9)


def test_dialog_with_unanswered_items_takes_the_mean_of_the_answered(
    profiles: Profiles, dialog: dict
) -> None:
    _drop(dialog, "job_situation", "medication")
    # Items 1-8 without job_situation: 27 / 7; items 9-11 without medication: 10 / 2.
    _answer(dialog, "dialog-quality-of-life")["valueDecimal"] = round(27 / 7, 2)
    _answer(dialog, "dialog-treatment-satisfaction")["valueDecimal"] = 5.0
    assert profiles.check(dialog) == []


def test_dialog_mean_over_all_eight_when_items_are_missing_is_rejected(
    profiles: Profiles, dialog: dict
) -> None:
    _drop(dialog, "job_situation")
    _answer(dialog, "dialog-quality-of-life")["valueDecimal"] = 27 / 8  # a missing item as 0
    (issue,) = profiles.check(dialog)
    assert issue.rule == (
        "dialog: dialog-quality-of-life is the mean of mental_health..personal_safety"
    )


@pytest.mark.parametrize("mean", [3.62, 3.63, 3.625])
def test_dialog_mean_rounded_to_two_decimals_conforms(
    profiles: Profiles, dialog: dict, mean: float
) -> None:
    _answer(dialog, "dialog-quality-of-life")["valueDecimal"] = mean
    assert profiles.check(dialog) == []


def test_dialog_mean_answered_as_an_integer_is_rejected(profiles: Profiles, dialog: dict) -> None:
    answer = _answer(dialog, "dialog-treatment-satisfaction")
    answer["valueInteger"] = int(answer.pop("valueDecimal"))
    (issue,) = profiles.check(dialog)
    assert issue.rule == "dialog: dialog-treatment-satisfaction answer type"
    assert "expected valueDecimal" in issue.message


def test_unknown_linkid_is_rejected(profiles: Profiles, phq9: dict) -> None:
    phq9["item"].append({"linkId": "phq9-10", "answer": [{"valueInteger": 1}]})
    (issue,) = profiles.check(phq9)
    assert issue.rule == "phq-9: known linkId"
    assert issue.path == "QuestionnaireResponse.item[10].linkId"
    assert "phq9-10" in issue.message


def test_integer_item_answered_with_a_string_is_rejected(profiles: Profiles, gad7: dict) -> None:
    answer = _answer(gad7, "gad7-2")
    answer["valueString"] = str(answer.pop("valueInteger"))
    assert errors(profiles, gad7) == ["gad-7: gad7-2 answer type"]


def test_item_with_two_answers_or_twice_is_rejected(profiles: Profiles, phq9: dict) -> None:
    phq9["item"][0]["answer"].append({"valueInteger": 3})
    assert "phq-9: phq9-1 has one answer" in errors(profiles, phq9)
    phq9["item"][0]["answer"].pop()
    phq9["item"].append({"linkId": "phq9-1", "answer": [{"valueInteger": 2}]})
    assert errors(profiles, phq9) == ["phq-9: phq9-1 appears once"]


def test_answers_nested_in_groups_are_checked(profiles: Profiles, phq9: dict) -> None:
    phq9["item"] = [{"linkId": "phq9-stem", "item": phq9["item"]}]
    assert profiles.check(phq9) == []
    phq9["item"][0]["item"][0]["answer"][0]["valueInteger"] = 7
    assert "phq-9: phq9-1 in 0..3" in errors(profiles, phq9)


def test_swemwbs_metric_not_from_the_conversion_table_is_rejected(
    profiles: Profiles, swemwbs: dict
) -> None:
    _answer(swemwbs, "swemwbs-metric")["valueDecimal"] = 20.0  # the raw total, not converted
    (issue,) = profiles.check(swemwbs)
    assert issue.rule == "swemwbs: swemwbs-metric is the converted score of swemwbs-total"
    assert issue.message == "swemwbs-metric is 20 but the conversion table gives 18.59"


def test_swemwbs_raw_total_that_is_not_the_sum_is_rejected(
    profiles: Profiles, swemwbs: dict
) -> None:
    _answer(swemwbs, "swemwbs-total")["valueInteger"] = 21
    assert errors(profiles, swemwbs) == ["swemwbs: swemwbs-total is the sum of q1..q7"]


def test_swemwbs_item_out_of_range_is_rejected(profiles: Profiles, swemwbs: dict) -> None:
    _answer(swemwbs, "q4")["valueInteger"] = 6
    assert "swemwbs: q4 in 1..5" in errors(profiles, swemwbs)


def test_swemwbs_with_a_blank_item_has_no_score_to_check(profiles: Profiles, swemwbs: dict) -> None:
    _drop(swemwbs, "q7", "swemwbs-total")
    _answer(swemwbs, "swemwbs-metric")["valueDecimal"] = 16.88
    assert profiles.check(swemwbs) == []


def test_unknown_questionnaire_is_one_warning_not_an_error(profiles: Profiles, phq9: dict) -> None:
    phq9["questionnaire"] = f"{HUB}/Questionnaire/reqol-10"
    (issue,) = profiles.check(phq9)
    assert issue.severity == "warning"
    assert issue.rule == "hub-QuestionnaireResponse: questionnaire is loaded"


def test_questionnaire_canonical_with_a_version_is_found(profiles: Profiles, phq9: dict) -> None:
    phq9["questionnaire"] = f"{HUB}/Questionnaire/phq-9|0.1.0"
    _answer(phq9, "phq9-total")["valueInteger"] = 27
    assert errors(profiles, phq9) == ["phq-9: phq9-total is the sum of phq9-1..phq9-9"]


def test_required_item_left_out_is_rejected(profiles_copy: Path, phq9: dict) -> None:
    path = profiles_copy / "Questionnaire" / "phq-9.json"
    questionnaire = read_json(path)
    for item in questionnaire["item"]:
        if item["linkId"] == "phq9-9":
            item["required"] = True
    write_json(path, questionnaire)
    profiles = Profiles.load(profiles_copy)
    assert profiles.check(phq9) == []
    _drop(phq9, "phq9-9")
    (issue,) = profiles.check(phq9)
    assert issue.rule == "phq-9: phq9-9 required"
