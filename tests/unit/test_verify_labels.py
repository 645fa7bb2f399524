"""verify-data's pure parts: labels, table names, losses, the verdict, what full-deploy counts as new."""

import uuid

import pytest
from psycopg import sql

from migration_tools.deploy.integrity import labels, losses, runner
from migration_tools.deploy.integrity.report import (
    Duplicates,
    IntegrityReport,
    Loss,
    MissingTable,
    NotValidConstraint,
    Orphans,
    SummaryLine,
    Unchecked,
    UniqueViolation,
    new_problems,
)
from migration_tools.deploy.integrity.schema import UniqueIndex, enforced


def test_count_labels_are_the_model_classes_module_and_name():
    assert labels.count_label("medications.models", "Medication") == "medications.models.Medication"
    assert labels.count_label("shopframework.apps.catalogue.models", "Product") == (
        "shopframework.apps.catalogue.models.Product")
    assert labels.fallback_module("catalogue") == "catalogue.models"


@pytest.mark.parametrize(("db_table", "split", "quoted"), [
    ("users_user", ("", "users_user"), '"users_user"'),
    ('archive"."legacy_record', ("archive", "legacy_record"), '"archive"."legacy_record"'),
    ('"archive"."legacy_record"', ("archive", "legacy_record"), '"archive"."legacy_record"'),
    ("MixedCase", ("", "MixedCase"), '"MixedCase"'),
])
def test_db_tables_split_and_quote_as_django_writes_them(db_table, split, quoted):
    assert labels.split_db_table(db_table) == split
    assert labels.quoted_db_table(db_table) == quoted


def test_summary_lines_use_the_plural_or_the_configured_label_and_name_the_app_on_a_clash():
    models = [("medications.Medication", "medications"), ("places.Note", "notes"),
              ("catalogue.Note", "notes")]
    assert labels.summary_lines(models, {}) == {
        "medications.Medication": "Orphan medications",
        "places.Note": "Orphan notes (places)",
        "catalogue.Note": "Orphan notes (catalogue)",
    }
    configured = {"catalogue.Note": "Orphan product notes"}
    assert labels.summary_lines(models, configured)["catalogue.Note"] == "Orphan product notes"
    assert labels.summary_lines(models, configured)["places.Note"] == "Orphan notes"


def test_total_labels_have_generic_defaults():
    assert labels.total_label({}, labels.ORPHANS_KEY) == "Orphan records"
    assert labels.total_label({}, labels.DUPLICATES_KEY) == "Potential duplicates"
    assert labels.total_label({"orphans": "Orphan rows"}, labels.ORPHANS_KEY) == "Orphan rows"


def test_examples_show_at_most_five_keys():
    assert labels.example_text("id", [3, 7, 9, 11, 12, 40]) == "e.g. id 3, 7, 9, 11, 12"
    assert labels.example_text("place_ptr_id", [99]) == "e.g. place_ptr_id 99"
    assert labels.example_text("id", []) == ""


def test_relation_text_names_the_through_table_side_and_the_generic_target():
    assert labels.relation_text("security.SecurityEvent", "user", "foreign key",
                                "public.security_securityevent", "user_id", "users.User") == (
        "security.SecurityEvent.user")
    assert labels.relation_text("places.Restaurant", "suppliers", "many-to-many",
                                "public.places_restaurant_suppliers", "supplier_id", "places.Supplier") == (
        "places.Restaurant.suppliers (public.places_restaurant_suppliers.supplier_id -> places.Supplier)")
    assert labels.relation_text("catalogue.Comment", "content_object", "generic", "public.catalogue_comment",
                                "object_id", "catalogue.Product") == (
        "catalogue.Comment.content_object -> catalogue.Product")


def test_allowed_decreases_match_the_table_or_schema_and_table():
    assert labels.is_allowed("public.django_session", ["django_session"])
    assert labels.is_allowed("archive.legacy_record", ["archive.legacy_record"])
    assert not labels.is_allowed("archive.legacy_record", ["public.legacy_record"])
    assert not labels.is_allowed("public.users_user", [])


def test_losses_are_the_tables_with_fewer_rows_allowed_or_estimated_never_failing():
    before = {"public.a": 10, "public.b": 5, "public.c": 100, "public.d": 7, "public.gone": 3}
    now = {"public.a": 10, "public.b": 2, "public.c": 90, "public.d": 1, "public.new": 4}
    found = losses.losses(before, now, estimated={"public.c"}, allowed=["d"])
    assert found == [
        Loss("public.b", 5, 2), Loss("public.c", 100, 90, estimated=True),
        Loss("public.d", 7, 1, allowed=True)]
    assert [(x.lost, x.unexpected) for x in found] == [(3, True), (10, False), (6, False)]
    assert losses.gone(before, now, allowed=[]) == ["public.gone"]
    assert losses.gone(before, now, allowed=["gone"]) == []


def test_a_unique_declaration_is_enforced_by_a_valid_plain_index_on_it_or_on_fewer_columns():
    email = UniqueIndex(True, True, frozenset({"email"}), "users_email_key")
    broken = UniqueIndex(False, True, frozenset({"code"}), "code_idx")
    partial = UniqueIndex(True, False, frozenset({"name"}), "active_name_uniq")
    assert enforced([email], ["email"])
    assert enforced([email], ["email", "tenant_id"])  # unique email makes (email, tenant) unique too
    assert not enforced([email], ["tenant_id"])
    assert not enforced([broken], ["code"])  # an invalid index (failed concurrent build) enforces nothing
    assert not enforced([partial], ["name"])
    assert enforced([partial], ["name"], "active_name_uniq")


def test_the_verdict_lists_every_kind_of_problem_and_duplicates_only_when_strict():
    report = IntegrityReport()
    assert report.ok and report.problems() == []
    report.orphans = [Orphans("a.B", "c", 3)]
    assert report.problems() == ["3 orphaned row(s)", "0 invalid index(es)"]
    report.orphans = [Orphans("a.B", "c", 0)]
    report.missing_tables = [MissingTable("a.B", "a_b")]
    report.unchecked = [Unchecked("count of public.a_b", "timed out after 60s")]
    assert report.problems() == ["0 orphaned row(s)", "0 invalid index(es)", "1 missing table(s)",
                                 "1 check(s) not done"]
    clean = IntegrityReport(losses=[Loss("public.x", 5, 4, allowed=True)])
    assert clean.ok
    warned = IntegrityReport(duplicates=[Duplicates("users.User", ("email",), 2)])
    assert warned.ok
    warned.strict = True
    assert warned.problems()[-1] == "2 potential duplicate(s)"


def test_per_model_summary_lines_leave_the_total_for_orphans_they_do_not_cover():
    report = IntegrityReport(orphans=[Orphans("a.B", "c", 2, target="a.C"),
                                      Orphans("x.Y", "z", 5, target="x.Z")],
                             summary=[SummaryLine("Orphan bees", 2, "a.B")])
    assert report.uncovered_orphans == 5


def test_new_problems_are_only_those_the_release_brought():
    before = IntegrityReport(orphans=[Orphans("a.B", "c", 2, column="c_id", target="a.C")],
                             invalid_indexes=["old_idx"])
    after = IntegrityReport(
        orphans=[Orphans("a.B", "c", 5, column="c_id", target="a.C"), Orphans("a.D", "e", 0)],
        invalid_indexes=["old_idx", "new_idx"],
        not_valid=[NotValidConstraint("a_b", "a_b_c_fk", "foreign key")],
        unique_violations=[UniqueViolation("a.B", ("code",), "code (unique)", 1)],
        unchecked=[Unchecked("count of public.a_b", "timed out after 1s")],
    )
    assert new_problems(before, after) == [
        "a.B.c: 3 new orphaned row(s)",
        "invalid index new_idx",
        "NOT VALID constraint a_b_c_fk on a_b",
        "a.B (code): 1 new row(s) breaking an unenforced unique constraint",
        "not checked: count of public.a_b (timed out after 1s)",
    ]
    assert new_problems(after, after) == ["not checked: count of public.a_b (timed out after 1s)"]


def test_json_keys_are_plain_values():
    key = uuid.UUID(int=1)
    report = IntegrityReport(orphans=[Orphans("a.B", "c", 1, examples=(key,))])
    assert report.as_dict()["orphans"][0]["examples"] == [str(key)]


def test_tasks_run_per_table_the_largest_first():
    def task(key: str, table: str, size: int) -> runner.Task:
        return runner.Task(key, table, size, sql.SQL("SELECT 1"))

    tasks = [task("a1", "a", 1), task("b1", "b", 50), task("a2", "a", 1), task("c1", "c", 50)]
    groups = runner.groups_of(tasks)
    assert [[t.key for t in g] for g in groups] == [["b1"], ["c1"], ["a1", "a2"]]
