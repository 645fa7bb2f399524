"""Write a Django project with a long migration history, for the migrate benchmark.

    .venv/bin/python bench/make_long_history.py OUTDIR [--migrations 200] [--apps 5] [--check]

OUTDIR gets manage.py, the settings module `longhist_site.settings` (the database from
DB_NAME/DB_USER/DB_PASSWORD/DB_HOST/DB_PORT) and five apps whose migrations add models,
fields, indexes and foreign keys to one another's models, one change per migration, the way a
project grows over years. The migration files and the final models.py are written from the
same description, so `makemigrations --check` finds nothing to do (`--check` runs it).
Deterministic: the same arguments always write the same files.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from long_history_templates import MANAGE, SETTINGS

APP_NAMES = ("people", "stock", "sales", "billing", "support", "audit", "media", "routing")
ID_FIELD = 'models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")'


@dataclass
class Model:
    name: str
    fields: list[tuple[str, str]] = field(default_factory=list)  # (name, models.X(...) source)
    indexes: list[tuple[str, list[str]]] = field(default_factory=list)  # (index name, fields)


@dataclass
class App:
    label: str
    models: dict[str, Model] = field(default_factory=dict)
    migrations: list[str] = field(default_factory=list)

    @property
    def leaf(self) -> tuple[str, str]:
        return (self.label, self.migrations[-1])


@dataclass
class Step:
    """One migration: its app, a name slug, operations (source), extra dependencies."""

    app: App
    slug: str
    operations: list[str]
    depends: set[tuple[str, str]] = field(default_factory=set)


def fk_source(target_app: str, target_model: str, null: bool, in_migration: bool) -> str:
    """A foreign key as makemigrations writes it (to="app.model") or as models.py spells it."""
    to = f'to="{target_app}.{target_model.lower()}"' if in_migration else f'"{target_app}.{target_model}"'
    on_delete = "models.SET_NULL" if null else "models.CASCADE"
    extra = ", null=True, blank=True" if null else ""
    return f'models.ForeignKey({to}, on_delete={on_delete}, related_name="+"{extra})'


class History:
    def __init__(self, app_count: int, seed: int) -> None:
        self.apps = [App(label) for label in APP_NAMES[:app_count]]
        self.rng = random.Random(seed)
        self.counter = 0
        self.steps: list[Step] = []
        # FK fields are stored as ("fk", app, model, null) so both spellings can be written.
        self.fk: dict[tuple[str, str, str], tuple[str, str, bool]] = {}

    def next_id(self) -> int:
        self.counter += 1
        return self.counter

    def other_model(self, app: App) -> tuple[App, Model]:
        candidates = [(a, m) for a in self.apps if a is not app and a.migrations for m in a.models.values()]
        return self.rng.choice(candidates)

    def emit(self, app: App, slug: str, operations: list[str], depends: set[tuple[str, str]]) -> None:
        number = len(app.migrations) + 1
        name = f"{number:04d}_{slug}"
        deps = set(depends)
        if app.migrations:
            deps.add(app.leaf)
        self.steps.append(Step(app, name, operations, deps))
        app.migrations.append(name)

    def initial(self, app: App, index: int) -> None:
        first = Model(f"{app.label.capitalize()}Record", [("name", "models.CharField(max_length=100)")])
        second = Model(f"{app.label.capitalize()}Entry", [
            ("created_at", "models.DateTimeField(auto_now_add=True)"),
            ("amount", "models.IntegerField(default=0)"),
        ])
        depends: set[tuple[str, str]] = set()
        ops = [self.create_model_op(app, first)]
        if index > 0:
            target_app, target = self.other_model(app)
            self.add_fk(app, second, "parent", target_app, target, null=False)
            depends.add(target_app.leaf)
        second.fields.append(("record", f'"{app.label}.{first.name}"'))
        self.fk[(app.label, second.name, "record")] = (app.label, first.name, False)
        ops.append(self.create_model_op(app, second))
        app.models[first.name] = first
        app.models[second.name] = second
        self.emit(app, "initial", ops, depends)

    def add_fk(self, app: App, model: Model, name: str, target_app: App, target: Model, null: bool) -> None:
        model.fields.append((name, ""))
        self.fk[(app.label, model.name, name)] = (target_app.label, target.name, null)

    def field_source(self, app: App, model: Model, name: str, source: str, in_migration: bool) -> str:
        key = (app.label, model.name, name)
        if key in self.fk:
            target_app, target_model, null = self.fk[key]
            return fk_source(target_app, target_model, null, in_migration)
        return source

    def create_model_op(self, app: App, model: Model) -> str:
        lines = [f'                ("id", {ID_FIELD}),']
        for name, source in model.fields:
            lines.append(f'                ("{name}", {self.field_source(app, model, name, source, True)}),')
        body = "\n".join(lines)
        return (
            f'migrations.CreateModel(\n            name="{model.name}",\n'
            f"            fields=[\n{body}\n            ],\n        )"
        )

    def change(self, app: App) -> None:
        """One more migration for `app`: a field, an indexed field, an index, a foreign key,
        a widened column or a new model."""
        kind = self.rng.choices(
            ["char", "int_indexed", "index", "fk", "widen", "model"], weights=[5, 3, 3, 3, 2, 1]
        )[0]
        model = self.rng.choice(list(app.models.values()))
        n = self.next_id()
        lname = model.name.lower()
        if kind == "char":
            name = f"note_{n}"
            source = 'models.CharField(max_length=40, blank=True, default="")'
            model.fields.append((name, source))
            op = f'migrations.AddField(model_name="{lname}", name="{name}", field={source})'
            self.emit(app, f"{lname}_{name}", [op], set())
        elif kind == "int_indexed":
            name = f"level_{n}"
            source = "models.IntegerField(default=0, db_index=True)"
            model.fields.append((name, source))
            op = f'migrations.AddField(model_name="{lname}", name="{name}", field={source})'
            self.emit(app, f"{lname}_{name}", [op], set())
        elif kind == "index":
            plain = [f for f, s in model.fields if s.startswith(("models.CharField", "models.IntegerField"))]
            columns = self.rng.sample(plain, k=min(2, len(plain))) if plain else ["id"]
            if any(sorted(columns) == sorted(existing) for _, existing in model.indexes):
                return self.change(app)  # that index exists already: make another change
            index_name = f"ix_{app.label[:4]}_{n}"
            model.indexes.append((index_name, columns))
            index = f'models.Index(fields={columns!r}, name="{index_name}")'.replace("'", '"')
            op = f'migrations.AddIndex(model_name="{lname}", index={index})'
            self.emit(app, f"{lname}_{index_name}", [op], set())
        elif kind == "fk":
            target_app, target = self.other_model(app)
            name = f"link_{n}"
            self.add_fk(app, model, name, target_app, target, null=True)
            source = self.field_source(app, model, name, "", True)
            op = f'migrations.AddField(model_name="{lname}", name="{name}", field={source})'
            self.emit(app, f"{lname}_{name}", [op], {target_app.leaf})
        elif kind == "widen":
            narrow = "models.CharField(max_length=40"
            chars = [i for i, (_, s) in enumerate(model.fields) if s.startswith(narrow)]
            if not chars:
                return self.change(app)
            i = self.rng.choice(chars)
            name = model.fields[i][0]
            source = model.fields[i][1].replace("max_length=40", "max_length=120")
            model.fields[i] = (name, source)
            op = f'migrations.AlterField(model_name="{lname}", name="{name}", field={source})'
            self.emit(app, f"widen_{lname}_{name}", [op], set())
        else:
            new = Model(f"{app.label.capitalize()}Item{n}", [("label", "models.CharField(max_length=60)")])
            target_app, target = self.other_model(app)
            self.add_fk(app, new, "owner", target_app, target, null=False)
            app.models[new.name] = new
            self.emit(app, f"{new.name.lower()}", [self.create_model_op(app, new)], {target_app.leaf})
        return None

    def build(self, total: int) -> None:
        for index, app in enumerate(self.apps):
            self.initial(app, index)
        while len(self.steps) < total:
            self.change(self.rng.choice(self.apps))


def migration_text(step: Step) -> str:
    deps = "\n".join(f'        ("{a}", "{n}"),' for a, n in sorted(step.depends))
    ops = "\n".join(f"        {op}," for op in step.operations)
    initial = "    initial = True\n\n" if step.slug.endswith("_initial") else ""
    return (
        "from django.db import migrations, models\n\n\n"
        "class Migration(migrations.Migration):\n"
        f"{initial}"
        f"    dependencies = [\n{deps}\n    ]\n\n"
        f"    operations = [\n{ops}\n    ]\n"
    )


def models_text(history: History, app: App) -> str:
    out = ["from django.db import models", ""]
    for model in app.models.values():
        out += ["", f"class {model.name}(models.Model):"]
        for name, source in model.fields:
            out.append(f"    {name} = {history.field_source(app, model, name, source, False)}")
        if model.indexes:
            out += ["", "    class Meta:", "        indexes = [  # noqa: RUF012"]
            for index_name, columns in model.indexes:
                cols = ", ".join(f'"{c}"' for c in columns)
                out.append(f'            models.Index(fields=[{cols}], name="{index_name}"),')
            out.append("        ]")
        out.append("")
    return "\n".join(out)


def write_project(outdir: Path, total: int, app_count: int, seed: int = 2024) -> History:
    history = History(app_count, seed)
    history.build(total)
    if outdir.exists():
        shutil.rmtree(outdir)
    (outdir / "longhist_site").mkdir(parents=True)
    (outdir / "manage.py").write_text(MANAGE)
    (outdir / "manage.py").chmod(0o755)
    (outdir / "longhist_site" / "__init__.py").write_text("")
    apps = "\n".join(f'    "{app.label}",' for app in history.apps)
    (outdir / "longhist_site" / "settings.py").write_text(SETTINGS.format(apps=apps))
    for app in history.apps:
        migrations = outdir / app.label / "migrations"
        migrations.mkdir(parents=True)
        (outdir / app.label / "__init__.py").write_text("")
        (migrations / "__init__.py").write_text("")
        (outdir / app.label / "models.py").write_text(models_text(history, app))
    for step in history.steps:
        (outdir / step.app.label / "migrations" / f"{step.slug}.py").write_text(migration_text(step))
    return history


def check(outdir: Path) -> int:
    """makemigrations --check: the models match the generated migrations exactly."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "longhist_site.settings"}
    env.setdefault("DB_NAME", "unused")
    env.setdefault("DB_PORT", "1")  # no server needed: the history check only warns
    result = subprocess.run(
        [sys.executable, str(outdir / "manage.py"), "makemigrations", "--check", "--dry-run"],
        env=env, cwd=outdir, capture_output=True, text=True, check=False,
    )
    print(result.stdout.strip())
    return result.returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("outdir", type=Path)
    parser.add_argument("--migrations", type=int, default=200)
    parser.add_argument("--apps", type=int, default=5, choices=range(2, len(APP_NAMES) + 1))
    parser.add_argument("--check", action="store_true", help="run makemigrations --check afterwards")
    args = parser.parse_args(argv)
    history = write_project(args.outdir, args.migrations, args.apps)
    per_app = ", ".join(f"{a.label} {len(a.migrations)}" for a in history.apps)
    print(f"wrote {len(history.steps)} migrations to {args.outdir} ({per_app})")
    return check(args.outdir) if args.check else 0


if __name__ == "__main__":
    sys.exit(main())
