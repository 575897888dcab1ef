"""bench.core.store: what it refuses before Optuna touches a file, metric names, shown URLs.

Permission cases run for real in a subprocess without the file-permission override
(a non-root user, or root with CAP_DAC_OVERRIDE dropped through setpriv), because
root passes every os.access check; the messages are also checked in-process.
"""
from __future__ import annotations

import ast
import json
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState, create_trial

from bench.core import schema, store
from bench.core.errors import UserError

optuna.logging.set_verbosity(optuna.logging.WARNING)

REPO = Path(__file__).resolve().parents[1]
KT_PROJECT = REPO / "tests" / "fixtures" / "kt_legacy" / "v1_2_retry_queue"


def _url(path: Path) -> str:
    return f"sqlite:///{path}"


def _search_store(path: Path) -> None:
    """A real store with one benchmark search study (what `report` reads)."""
    study = store.create_study(_url(path), "toon-tpe-s0")
    study.set_user_attr(schema.STUDY_BENCH, {"kind": schema.KIND_SEARCH, "searcher": "tpe",
                                             "seed": 0, "dataset": "toon", "backend": "optuna"})
    dist = {"x": optuna.distributions.FloatDistribution(0, 1)}
    for i in range(3):
        study.add_trial(create_trial(state=TrialState.COMPLETE, value=1.0 - 0.1 * i,
                                     params={"x": 0.1 * i}, distributions=dist,
                                     user_attrs={schema.T_EPOCHS: 2}))


# ------------------------------------------------------------------ display_url
@pytest.mark.parametrize("url, shown", [
    ("postgresql://u:s3cret@db.example:5432/optuna", "postgresql://u:***@db.example:5432/optuna"),
    # a raw '@' in the password: SQLAlchemy alone would print "u:***@cr@et@host"
    ("postgresql://u:s3@cr@et@db.example/optuna", "postgresql://u:***@db.example/optuna"),
    ("mysql+pymysql://u:p%40ss@h/db", "mysql+pymysql://u:***@h/db"),
    ("postgresql://u:p@ss@h:notaport/db", "postgresql://***@h:notaport/db"),  # unparsable
    ("postgresql://u@h/db", "postgresql://u@h/db"),
    ("sqlite:///studies.db", "sqlite:///studies.db"),
])
def test_display_url_hides_the_whole_password(url: str, shown: str) -> None:
    assert store.display_url(url) == shown


@pytest.mark.parametrize("password", [
    "Zq@Xv@Wk", "Zq@Xv/Wk", "Zq@Xv?Wk=1", "Zq@Xv#Wk", "Zq:Xv@Wk", "@ZqXvWk", "ZqXvWk@", "Zq%40Xv@Wk",
])
@pytest.mark.parametrize("template", [
    "postgresql://u:{}@db.example:5432/optuna",
    "mysql+pymysql://u:{}@db.example/optuna?charset=utf8mb4",
    "postgresql://u:{}@db.example:notaport/optuna",  # SQLAlchemy cannot parse it
])
def test_display_url_never_shows_part_of_a_password_with_an_at(password: str, template: str) -> None:
    """SQLAlchemy splits a raw '@' in a password at the first '@'; no piece may leak."""
    shown = store.display_url(template.format(password))
    assert "***@db.example" in shown, shown
    for piece in ("Zq", "Xv", "Wk"):
        assert piece not in shown, shown


@pytest.mark.parametrize("url, shown", [
    ("postgresql://u@h/db?sslmode=require&password=s3cret", "postgresql://u@h/db?sslmode=require&password=***"),
    ("mysql+pymysql://u:pw@h/db?passwd=s3cret", "mysql+pymysql://u:***@h/db?passwd=***"),
    ("sqlite:////tmp/a@b:c.db", "sqlite:////tmp/a@b:c.db"),  # no password: shown as given
    ("postgresql://u@ho@st/db", "postgresql://u@ho@st/db"),
    ("studies.db", "studies.db"),
])
def test_display_url_hides_query_passwords_and_keeps_the_rest(url: str, shown: str) -> None:
    assert store.display_url(url) == shown


def test_session_engine_has_no_pool(tmp_path: Path) -> None:
    import sqlalchemy

    engine = store.session_engine(_url(tmp_path / "s.db"))
    try:
        assert isinstance(engine.pool, sqlalchemy.pool.NullPool)
        with engine.connect() as con:
            assert con.execute(sqlalchemy.text("SELECT 1")).scalar() == 1
    finally:
        engine.dispose()


# ------------------------------------------------------------------ metric names
def test_every_created_study_names_its_objective(tmp_path: Path) -> None:
    url = _url(tmp_path / "s.db")
    rdb = store.open_storage(url)
    store.open_study(rdb, "toon-tpe-s0", {"direction": "minimize", "searcher": "tpe"})
    store.create_study(rdb, "toon-compare")                    # meta studies
    named = store.create_study(rdb, "mine", direction="maximize", metric_names=["acc"])
    assert named.metric_names == ["acc"]
    again = store.create_study(rdb, "mine", direction="maximize")  # names already set: kept
    assert again.metric_names == ["acc"]
    plain = optuna.create_study(storage=rdb, study_name="older")   # made before names existed
    assert plain.metric_names is None
    store.create_study(rdb, "older")                            # reopening names it
    names = {s: optuna.load_study(study_name=s, storage=url).metric_names
             for s in optuna.get_all_study_names(url)}
    assert names == {"toon-tpe-s0": ["val_loss"], "toon-compare": ["val_loss"],
                     "mine": ["acc"], "older": ["val_loss"]}


def test_no_module_creates_a_stored_study_around_the_helper() -> None:
    """Every study the benchmark stores goes through store.create_study (metric names)."""
    offenders = []
    for path in sorted((REPO / "bench").glob("*.py")):
        if path.name == "store.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "create_study"
                    and isinstance(node.func.value, ast.Name) and node.func.value.id == "optuna"
                    and any(k.arg == "storage" for k in node.keywords)):
                offenders.append(f"{path.name}:{node.lineno}")
    assert offenders == [], "use bench.core.store.create_study: " + ", ".join(offenders)


# ------------------------------------------------------------------ foreign files
def test_foreign_file_with_optuna_table_names_is_never_written(tmp_path: Path) -> None:
    db = tmp_path / "app.db"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE studies (id INTEGER PRIMARY KEY, title TEXT)")
    con.execute("CREATE TABLE version_info (major INTEGER, minor INTEGER)")
    con.execute("INSERT INTO studies (title) VALUES ('maths')")
    con.commit()
    con.close()
    before = db.read_bytes()
    for kwargs in ({}, {"must_exist": True, "read_only": True}):
        with pytest.raises(UserError, match="another program.*untouched"):
            store.open_storage(_url(db), **kwargs)
    assert db.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["app.db"]
    real = tmp_path / "real.db"
    _search_store(real)
    assert store.open_storage(_url(real)) is not None  # a real Optuna store still opens


# ------------------------------------------------------------------ existence, paths
def test_missing_store_is_refused_where_only_read(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"no study store at .*studes\.db: the file does not exist"):
        store.open_storage(_url(tmp_path / "studes.db"), must_exist=True, read_only=True)
    (tmp_path / "empty.db").touch()
    with pytest.raises(UserError, match="the file is empty"):
        store.open_storage(_url(tmp_path / "empty.db"), must_exist=True, read_only=True)
    with pytest.raises(UserError, match=r"the folder .*nowhere does not exist; create it"):
        store.open_storage(_url(tmp_path / "nowhere" / "s.db"))
    with pytest.raises(UserError, match="is a folder, not a file"):
        store.open_storage(_url(tmp_path))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.db"]
    assert (tmp_path / "empty.db").stat().st_size == 0


def test_dashboard_refuses_a_mistyped_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture) -> None:
    from bench.cli import main
    monkeypatch.chdir(tmp_path)
    rc = main(["dashboard", "--storage", "sqlite:///studes.db", "--port", "0"])
    out, err = capsys.readouterr()
    assert rc == 2 and out == ""
    assert err.splitlines() == ["error: no study store at studes.db: the file does not exist "
                                "(check --storage)"]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("denied, expected", [
    ("file", "the store {db} is read-only (no write permission on the file); make it writable"),
    ("folder", "the folder {folder} of the store {db} is not writable (SQLite creates "
               "s.db-journal there on every write)"),
    ("new", "cannot create the store {new}: the folder {folder} is not writable"),
])
def test_unwritable_store_messages(denied: str, expected: str, tmp_path: Path,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """os.access as a non-root user would answer (root passes every check)."""
    db, new = tmp_path / "s.db", tmp_path / "new.db"
    _search_store(db)
    before = db.read_bytes()
    real_access = os.access
    no_write = {"file": db, "folder": tmp_path, "new": tmp_path}[denied]

    def access(path, mode, **kwargs) -> bool:
        if Path(path) == no_write and mode & os.W_OK:
            return False
        return real_access(path, mode, **kwargs)
    monkeypatch.setattr(os, "access", access)
    target = new if denied == "new" else db
    with pytest.raises(UserError) as info:
        store.open_storage(_url(target))
    assert str(info.value).startswith(expected.format(db=db, new=new, folder=tmp_path))
    assert "\n" not in str(info.value)
    assert db.read_bytes() == before and not new.exists()
    # Readers need no write access: report and dashboard open it all the same.
    if denied != "new":
        assert store.open_storage(_url(db), must_exist=True, read_only=True) is not None
        assert store.write_problem(_url(db)) == expected.format(
            db=db, new=new, folder=tmp_path).split("; make it")[0]


# ------------------------------------------------------------------ real permissions
_SNIPPET = r"""
import contextlib, io, json, sys
import optuna_dashboard
from bench.cli import main
from bench.core.store import open_storage

results = []
for argv in json.loads(sys.argv[1]):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(argv)
    results.append([rc, out.getvalue(), err.getvalue()])
# the dashboard serves a read-only store (its page only reads)
app = optuna_dashboard.wsgi(open_storage(sys.argv[2], must_exist=True, read_only=True))
status = []
body = b"".join(app({"REQUEST_METHOD": "GET", "PATH_INFO": "/api/studies", "QUERY_STRING": "",
                     "SERVER_NAME": "x", "SERVER_PORT": "80", "wsgi.url_scheme": "http",
                     "wsgi.input": io.BytesIO(), "wsgi.errors": sys.stderr},
                    lambda s, h, *a: status.append(s)))
results.append([status[0], json.loads(body)["study_summaries"][0]["study_name"]])
print("RESULTS " + json.dumps(results))
"""


def _unprivileged() -> list[str]:
    """A command prefix under which file permissions apply (root: drop the override)."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: permissions cannot be exercised")
    caps = "-dac_override,-dac_read_search"
    return [setpriv, f"--bounding-set={caps}", f"--inh-caps={caps}"]


def test_read_only_store_for_real(tmp_path: Path) -> None:
    ro, ro_folder, out = tmp_path / "ro", tmp_path / "ro_folder", tmp_path / "out"
    for folder in (ro, ro_folder, out):
        folder.mkdir()
    _search_store(ro / "studies.db")
    _search_store(ro_folder / "studies.db")
    (ro / "studies.db").chmod(0o444)
    (ro_folder / "studies.db").chmod(0o666)
    ro.chmod(0o555)
    ro_folder.chmod(0o555)
    before = {p: p.read_bytes() for p in (ro / "studies.db", ro_folder / "studies.db")}
    kt = ["import-kt", str(KT_PROJECT), "--storage"]
    argv = [["report", "--storage", _url(ro / "studies.db"), "--out", str(out / "RESULTS.md"),
             "--plots-dir", str(out / "results")],
            kt + [_url(ro / "studies.db")], kt + [_url(ro / "new.db")],
            kt + [_url(ro_folder / "studies.db")]]
    env = dict(os.environ, MPLCONFIGDIR=str(out), TF_CPP_MIN_LOG_LEVEL="3")
    try:
        done = subprocess.run(
            [*_unprivileged(), sys.executable, "-c", _SNIPPET, json.dumps(argv),
             _url(ro / "studies.db")], cwd=out, env=env, capture_output=True, text=True,
            timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        line = next(ln for ln in done.stdout.splitlines() if ln.startswith("RESULTS "))
        report, ro_file, new_in_ro, ro_dir, dashboard = json.loads(line[len("RESULTS "):])
        assert report[0] == 0 and "wrote" in report[1], report  # a reader needs no write access
        assert "| tpe | optuna | 1 |" in (out / "RESULTS.md").read_text(encoding="utf-8")
        expect = {"read-only": ro_file, "cannot create the store": new_in_ro,
                  "is not writable (SQLite creates studies.db-journal": ro_dir}
        for words, (rc, stdout, stderr) in expect.items():
            assert rc == 2 and stdout == "", (words, stdout, stderr)
            lines = stderr.splitlines()
            assert len(lines) == 1 and lines[0].startswith("error: ") and words in lines[0], lines
        assert dashboard == ["200 OK", "toon-tpe-s0"]
        for path, data in before.items():
            assert path.read_bytes() == data, f"{path} was changed"
        assert sorted(p.name for p in ro.iterdir()) == ["studies.db"]
        assert sorted(p.name for p in ro_folder.iterdir()) == ["studies.db"]
    finally:
        for folder in (ro, ro_folder):
            folder.chmod(stat.S_IRWXU)
