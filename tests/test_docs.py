"""The README and the docs, run the way a user runs them.

Every shell, console and Python block of ``README.md`` and ``docs/*.md`` carries a mark on
the line before it: ``<!-- doc-test: NAME -->`` when a test here runs it, or the visible
line ``_Not run by the documentation tests: REASON._`` when it cannot be run here.
:func:`test_every_snippet_is_marked_and_every_name_is_run` keeps the marks and the tests
in step, so nothing documented goes untested silently.

The user's path is walked in a fresh ``HOME`` and a fresh working directory, with two
changes a user makes too when 9092 and 6066 are taken (this suite's own broker holds
9092): the local broker's ports and the web port come from ``AIOPS_*`` variables, and the
snippets' ``127.0.0.1:9092`` / ``kafka:9092`` stand for that broker. ``make install`` is
the one line not run again: it made the virtual environment this suite runs from, which
the fresh directory links to as ``.venv``.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest

from tests.kafka_harness import free_port

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
RUNNABLE = {"sh", "bash", "shell", "console", "python"}
_FENCE = re.compile(r"^```(\w*)\s*$")
_MARK = re.compile(r"^<!--\s*doc-test:\s*(?P<mark>.+?)\s*-->\s*$")
_SKIP = re.compile(r"^_Not run by the documentation tests: (?P<reason>.+)\._\s*$")

#: Names of the snippets the tests of this module run.
RUN_HERE = {
    "readme-two-commands",
    "readme-run",
    "readme-send-kcat",
    "readme-send-python",
    "readme-sample",
    "ingest-graphite-kcat",
    "ingest-contract-kcat",
    "slack-preview",
    "readme-console",
}
#: Lines not run, and why (each must still stand in its snippet).
NOT_RUN = {
    "make install": "made the virtual environment this suite runs from",
    "make test": "runs this suite",
}


@dataclass(frozen=True)
class Snippet:
    document: Path
    line: int
    language: str
    mark: str | None
    text: str

    def commands(self) -> list[str]:
        """Logical shell lines: continuations joined, ``$ `` prompts taken off, blank and
        comment-only lines dropped."""
        out: list[str] = []
        pending = ""
        for raw in self.text.splitlines():
            line = raw[2:] if self.language == "console" and raw.startswith("$ ") else raw
            if line.rstrip().endswith("\\"):
                pending += line.rstrip()[:-1] + " "
                continue
            line = pending + line
            pending = ""
            if line.strip() and not line.lstrip().startswith("#"):
                out.append(line.strip())
        return out


def snippets() -> list[Snippet]:
    found: list[Snippet] = []
    for document in DOCUMENTS:
        lines = document.read_text().splitlines()
        index = 0
        while index < len(lines):
            fence = _FENCE.match(lines[index])
            if fence is None:
                index += 1
                continue
            end = next(i for i in range(index + 1, len(lines)) if lines[i].startswith("```"))
            language = fence.group(1)
            if language in RUNNABLE:
                before = next((lines[i] for i in range(index - 1, -1, -1) if lines[i].strip()), "")
                mark = _MARK.match(before)
                skip = _SKIP.match(before)
                found.append(
                    Snippet(
                        document,
                        index + 1,
                        language,
                        mark.group("mark") if mark else f"skip: {skip['reason']}" if skip else None,
                        "\n".join(lines[index + 1 : end]) + "\n",
                    )
                )
            index = end + 1
    return found


def snippet(name: str) -> Snippet:
    [found] = [s for s in snippets() if s.mark == name]
    return found


def test_every_snippet_is_marked_and_every_name_is_run():
    names: list[str] = []
    for s in snippets():
        where = f"{s.document.relative_to(ROOT)}:{s.line}"
        assert s.mark is not None, f"{where}: a {s.language} block without a doc-test mark"
        if s.mark.startswith("skip: "):
            assert len(s.mark) > 20, f"{where}: say why it is not run"
            continue
        assert s.mark in RUN_HERE, f"{where}: {s.mark!r} is run by no test of tests/test_docs.py"
        names.append(s.mark)
    assert sorted(names) == sorted(RUN_HERE), "a name run here is missing from the docs, or twice"
    texts = "".join(s.text for s in snippets())
    for line in NOT_RUN:
        assert line in texts


# -- the user's path --------------------------------------------------------------------------


@dataclass
class UserShell:
    """A fresh home and working directory, and the substitutions described above."""

    cwd: Path
    env: dict[str, str]
    bootstrap: str
    web_port: int
    background: list[subprocess.Popen[bytes]]

    def text_of(self, command: str) -> str:
        return command.replace("127.0.0.1:9092", self.bootstrap).replace(
            "kafka:9092", self.bootstrap
        )

    def run(self, command: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            ["bash", "-c", self.text_of(command)],
            cwd=self.cwd,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        assert result.returncode == 0, f"{command!r} failed:\n{result.stdout}\n{result.stderr}"
        return result

    def start(self, command: str, log: str) -> subprocess.Popen[bytes]:
        with (self.cwd / log).open("wb") as out:
            proc = subprocess.Popen(
                ["bash", "-c", f"exec {self.text_of(command)}"],
                cwd=self.cwd,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.background.append(proc)
        return proc

    def health(self) -> dict[str, object] | None:
        try:
            url = f"http://127.0.0.1:{self.web_port}/health"
            with urllib.request.urlopen(url, timeout=2) as reply:
                health: dict[str, object] = orjson.loads(reply.read())
                return health
        except OSError:
            return None

    def stop_all(self) -> None:
        for proc in self.background:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()


def wait_for(check, timeout: float, what: str):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def fresh_user(tmp_path: Path) -> UserShell:
    home, cwd = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    cwd.mkdir()
    (cwd / ".venv").symlink_to(Path(sys.prefix))
    port, controller, web = free_port(), free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIOPS_")}
    env.update(
        {
            "HOME": str(home),
            "AIOPS_KAFKA_BOOTSTRAP": f"127.0.0.1:{port}",
            "AIOPS_LOCAL_KAFKA__PORT": str(port),
            "AIOPS_LOCAL_KAFKA__CONTROLLER_PORT": str(controller),
            "AIOPS_WORKER__WEB_PORT": str(web),
            "PATH": f"{Path(sys.prefix) / 'bin'}{os.pathsep}{env.get('PATH', '')}",
        }
    )
    return UserShell(cwd, env, f"127.0.0.1:{port}", web, [])


@pytest.fixture
def user(tmp_path: Path) -> Iterator[UserShell]:
    shell = fresh_user(tmp_path)
    yield shell
    shell.stop_all()
    subprocess.run(
        [str(Path(sys.prefix) / "bin" / "aiops"), "kafka", "down"],
        env=shell.env,
        capture_output=True,
        check=False,
        timeout=120,
    )


def require_kcat() -> None:
    if shutil.which("kcat") is None:
        message = "kcat is not installed (Debian package kcat); run .ci/install-producers"
        if os.environ.get("AIOPS_REQUIRE_PRODUCERS") == "1":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)


@pytest.mark.kafka
def test_the_readme_path_from_a_fresh_home_to_an_incident(user: UserShell):
    require_kcat()
    steps = snippet("readme-run").commands()
    assert [c.split("#")[0].split()[:2] for c in steps] == [
        ["make", "install"],
        [".venv/bin/aiops", "kafka"],
        [".venv/bin/aiops", "doctor"],
        [".venv/bin/aiops", "worker"],
        [".venv/bin/aiops", "tail"],
        [".venv/bin/aiops", "kafka"],
    ], "the README's steps changed: update this walk"
    _install, up, doctor, worker, tail, down = steps

    said = user.run(up, timeout=600)  # a fresh home: Kafka is fetched from Maven Central
    assert "Kafka is ready" in said.stdout + said.stderr
    checked = user.run(doctor)
    assert "all good" in checked.stdout and "not created yet" in checked.stdout

    proc = user.start(worker, "worker.log")
    wait_for(lambda: proc.poll() is not None or user.health(), 180, "the worker's /health")
    assert proc.poll() is None, (user.cwd / "worker.log").read_text()[-3000:]
    datadir = Path(user.env["HOME"]) / ".local" / "state" / "aiops-stream"
    assert datadir.is_dir()
    user.start(tail, "tail.log")
    time.sleep(3)  # the tail's consumer joins at the latest offsets

    for command in snippet("readme-send-kcat").commands():
        user.run(command)
    for command in snippet("ingest-graphite-kcat").commands():
        user.run(command)
    for command in snippet("ingest-contract-kcat").commands():
        user.run(command)
    script = user.cwd / "producer.py"
    script.write_text(user.text_of(snippet("readme-send-python").text))
    user.run(".venv/bin/python producer.py")

    def accepted() -> dict[str, int]:
        health = user.health() or {}
        return health.get("accepted") or {}  # type: ignore[return-value]

    # kcat's metric, graphite line, contract line and the Python event; kcat's log line
    wait_for(lambda: accepted().get("telemetry.metrics", 0) >= 4, 60, "four metric events")
    wait_for(lambda: accepted().get("telemetry.logs", 0) >= 1, 60, "the log event")

    for command in snippet("readme-sample").commands():
        user.run(command)
    tail_log = user.cwd / "tail.log"
    # the sample's fault: a critical incident whose root cause is payments. It may open on
    # checkout when checkout's partition is read ahead of payments' and turn to payments
    # as their anomalies come; kcat's error line above may open a small log incident too.
    record = re.compile(r"(?=\b(?:opened|updated|resolved) +inc-)")
    fault = re.compile(r"v\d+ critical payments: (?!log)\S+ anomaly .*root cause: payments/")

    def printed() -> list[str] | None:
        records = [" ".join(r.split()) for r in record.split(tail_log.read_text())]
        return records if any(fault.search(r) for r in records) else None

    records = wait_for(printed, 240, "aiops tail incidents to print the sample's incident")
    assert any(r.startswith("opened") and " critical " in r for r in records), records[:5]

    # the console, as the README starts it, lists that incident to the user it names
    export, console_cmd = snippet("readme-console").commands()
    name, _, value = export.split("#")[0].removeprefix("export ").strip().partition("=")
    user.env[name] = value.strip("'")
    user.env["AIOPS_CONSOLE__PORT"] = str(console_port := free_port())
    user.start(console_cmd.split("#")[0].strip(), "console.log")
    url = f"http://127.0.0.1:{console_port}/api/incidents"
    basic = base64.b64encode(b"alice:a long password").decode()

    def listed() -> list[dict[str, object]] | None:
        request = urllib.request.Request(url, headers={"Authorization": f"Basic {basic}"})
        try:
            with urllib.request.urlopen(request, timeout=2) as reply:
                items: list[dict[str, object]] = orjson.loads(reply.read())["items"]
        except OSError:
            return None
        return [i for i in items if "payments" in str(i.get("services"))] or None

    found = wait_for(listed, 60, "the console to list the sample's incident")
    assert found[0]["severity"] == "critical", found
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(url, timeout=2)
    assert refused.value.code == 401, "the console lists nothing without credentials"
    *_, export, preview = snippet("slack-preview").commands()
    for command in snippet("slack-preview").commands()[:-1]:
        user.run(command)
    assert "aiops.incidents" in export and (user.cwd / "incidents.jsonl").stat().st_size > 0
    assert any((user.cwd / "out").glob("*.json"))  # the sample incident, written out
    shown = " ".join(user.run(preview).stdout.split())
    assert "payments: errors anomaly" in shown

    user.stop_all()
    stopped = user.run(down, timeout=120)
    assert "Kafka stopped" in stopped.stdout + stopped.stderr


@pytest.mark.kafka
def test_make_demo_from_a_fresh_home(kafka, tmp_path):  # type: ignore[no-untyped-def]
    steps = snippet("readme-two-commands").commands()
    assert [c.split()[:2] for c in steps] == [["make", "demo"], ["make", "test"]]
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIOPS_")}
    env.update({"HOME": str(home), "AIOPS_KAFKA_BOOTSTRAP": kafka.bootstrap})
    if kafka.bootstrap != "127.0.0.1:9092":  # `aiops kafka up` must find this broker
        env["AIOPS_LOCAL_KAFKA__PORT"] = kafka.bootstrap.rsplit(":", 1)[1]
    result = subprocess.run(
        ["bash", "-c", steps[0]],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,  # no terminal: the demo exits after its summary
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    out = " ".join(result.stdout.split())
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "root cause found: yes (injected fault: payments)" in out
    assert re.search(r"incident console: http://127\.0\.0\.1:\d+/ \(sign in as demo", out), out
    shown = re.search(r"the console shows (\d+) incident\(s\)", out)
    assert shown and int(shown.group(1)) >= 1, out[-2000:]
    assert "the Slack message (rendered locally)" in out
