"""The Snakemake workflow end to end: dry runs of the paper's DAG, config errors before any job, lint and
format, and the whole smoke DAG (tiny models, CPU) with its table, figures, turntables and report."""

import csv
import json
import math
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from . import processes
from .browser import CHROMIUM

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ["--configfile", "workflow/smoke.yaml"]
pytestmark = pytest.mark.skipif(shutil.which("snakemake", path=str(Path(sys.executable).parent)) is None,
                                reason="snakemake is not installed beside this Python")


def snakemake(*args: str, timeout: float = 1800) -> subprocess.CompletedProcess:
    """Run snakemake from the repository root with this environment's executables first on PATH (a timeout, a hang
    guard, ends Snakemake and every job it started)."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    return processes.run([str(Path(sys.executable).parent / "snakemake"), *args], timeout, cwd=ROOT, env=env)


def job_counts(output: str) -> dict[str, int]:
    """The "Job stats" table of a dry run as {rule: count}."""
    counts, table = {}, output.split("Job stats:")[1].split("total")[0]
    for line in table.splitlines():
        match = re.match(r"^(\w+)\s+(\d+)$", line.strip())
        if match:
            counts[match.group(1)] = int(match.group(2))
    return counts


def test_paper_dag_plans_every_job_without_weights():
    result = snakemake("-n", "--cores", "1", "--resources", "gpu=1", "--config", 'pathvars={"results": "results/dryrun-paper"}', "check_models=False")
    assert result.returncode == 0, result.stderr + result.stdout
    counts = job_counts(result.stdout)
    # Table 1, segments, threshold, approx, cfg, gallery; the ablation prompt's sctd run is shared by four figures
    assert counts["train"] == 200 + 12 + 4 + 2 + 3 + 14 - 2
    assert counts["render"] == counts["train"]
    assert counts["evaluate_run"] == counts["train"] + 200  # CLIP-L of every run, ImageReward of Table 1's (figures show CLIP-L)
    assert counts["init_pointe"] == 40 + 1 + 14 and counts["fid"] == 5 and counts["reference_images"] == 1
    assert counts["table1_files"] == 1 and counts["figure"] == 5 and counts["build_extensions"] == 1
    table1 = job_counts(snakemake("-n", "table1", "--cores", "1", "--resources", "gpu=1", "--config",
                                  'pathvars={"results": "results/dryrun-paper"}', "check_models=False").stdout)
    assert table1["train"] == 200  # 40 prompts x 5 methods


def test_paper_dag_with_four_assets_per_job_trains_table1_in_fifty_jobs():
    result = snakemake("-n", "table1", "--cores", "1", "--resources", "gpu=1", "--config", "assets_per_job=4",
                       'pathvars={"results": "results/dryrun-paper"}', "check_models=False")
    assert result.returncode == 0, result.stderr + result.stdout
    counts = job_counts(result.stdout)
    batches = {rule: n for rule, n in counts.items() if rule.startswith("train_batch__")}
    assert len(batches) == 50 and set(batches.values()) == {1} and "train" not in counts  # 40 prompts / 4, 5 methods
    assert counts["render"] == 200 and "train_batch__dreamfusion40_sctd_cat_mullet_seed0_3" in batches


def test_seeds_and_nested_values_from_the_command_line_plan_per_seed_fids():
    """--config values inside lists and mappings arrive as strings from Snakemake; they mean what they mean in a
    config file (seeds=[0,1,2] are integers, train.iterations=300 an integer), and 3 seeds plan per-seed FIDs."""
    plan = snakemake("-n", "table1", "--cores", "1", "--resources", "gpu=1", "--config", 'pathvars={"results": "results/dryrun-paper"}',
                     "check_models=False", "seeds=[0,1,2]", 'train={"iterations": 300, "compile_prior": false}')
    assert plan.returncode == 0, plan.stdout[-3000:] + plan.stderr[-3000:]
    counts = job_counts(plan.stdout)
    assert counts["train"] == 600 and counts["fid"] == 5 and counts["fid_seed"] == 15  # 5 methods x 3 seeds
    assert "fid/dreamfusion40/sctd/seed2.json" in plan.stdout


def test_typed_overrides_follow_yaml_and_leave_text_alone():
    from segmentdreamer.plan.command_line import typed_overrides

    given = {"train": {"iterations": "300", "lr": "1e-3", "compile_prior": "false", "x": "null"}, "seeds": ["0", "1"],
             "negative_prompt": "blurry, 3 arms", "device": "cuda:1", "prompt": "7 cats"}
    assert typed_overrides(given) == {"train": {"iterations": 300, "lr": "1e-3", "compile_prior": False, "x": None},
                                      "seeds": [0, 1], "negative_prompt": "blurry, 3 arms", "device": "cuda:1", "prompt": "7 cats"}


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ('variants={"sctd": {"method": "sctdd"}}', "sctdd"),
        ('train={"iterations": -5}', "iterations"),
        ('prompt_sets={"mine": "prompts/absent.tsv"}', "prompt_sets.mine: prompt file 'prompts/absent.tsv' does not exist"),
        ('prompt_sets={"bad": "tests/data/bad_prompts.tsv"}', "bad_prompts.tsv:3"),
    ],
)
def test_malformed_config_fails_before_any_job_naming_the_key(override, message):
    result = snakemake("-n", "--cores", "1", "--config", override, timeout=300)
    assert result.returncode != 0
    assert message in result.stdout + result.stderr
    assert "Job stats" not in result.stdout


def test_lint_and_format():
    lint = snakemake("--lint", "--configfile", "workflow/smoke.yaml")
    assert lint.returncode == 0, lint.stdout + lint.stderr
    snakefmt = Path(sys.executable).parent / "snakefmt"
    files = ["Snakefile", *map(str, sorted((ROOT / "workflow" / "rules").glob("*.smk")))]
    fmt = subprocess.run([str(snakefmt), "--check", *files], cwd=ROOT, capture_output=True, text=True)
    assert fmt.returncode == 0, fmt.stdout + fmt.stderr


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    """The whole smoke DAG (tiny models, CPU) into a fresh results folder; returns that folder."""
    results = tmp_path_factory.mktemp("smoke") / "results"
    start = time.perf_counter()
    run = snakemake(*SMOKE, "--cores", "2", "--config", f'pathvars={{"results": "{results}"}}')
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    (results / "wall_seconds.txt").write_text(f"{time.perf_counter() - start:.0f}\n")
    return results


@pytest.mark.slow
def test_smoke_dag_writes_table1_with_five_finite_rows(smoke_run):
    rows = list(csv.DictReader((smoke_run / "table1" / "smoke.csv").open(encoding="utf-8")))
    assert [row["method"] for row in rows] == ["sctd", "sds", "ism", "cds", "gcs"] or len(rows) == 5
    for row in rows:
        for column, value in row.items():
            if column.lower().startswith(("clip", "ir", "time", "fid")) and "paper" not in column.lower():
                assert math.isfinite(float(value)), (column, value)
    markdown = (smoke_run / "table1" / "smoke.md").read_text(encoding="utf-8")
    assert markdown.count("\n|") >= 6 and "TINY-FEATURE DISTANCE" in markdown and "CLIP-L: tiny random-weight CLIP" in markdown
    assert (smoke_run / "table1" / "smoke.tex").read_text(encoding="utf-8").count("\\\\") >= 5


@pytest.mark.slow
def test_a_metric_from_outside_gets_its_table1_column(smoke_run, tmp_path):
    """tests/plugins/brightness.py (one file, one registration line) under plugins: on a copy of the smoke results,
    only its per-run jobs and the table run, and Table 1 gains its column (views are ~white: brightness near 1)."""
    results = tmp_path / "results"
    shutil.copytree(smoke_run, results)
    shutil.rmtree(results / "table1")  # the copy has no Snakemake records: in place, the manifest's changed params rerun it
    plugin = ["--config", 'plugins=["tests/plugins/brightness.py"]', f'pathvars={{"results": "{results}"}}']
    plan = snakemake("table1", "-n", *SMOKE, *plugin)  # the target first: --configfile takes several files
    assert plan.returncode == 0, plan.stdout[-3000:] + plan.stderr[-3000:]
    assert set(job_counts(plan.stdout)) == {"evaluate_run", "table1_manifest", "table1_files", "table1"}
    assert job_counts(plan.stdout)["evaluate_run"] == 10 and "--metric brightness" in plan.stdout  # Table 1's runs only
    made = snakemake("table1", *SMOKE, "--cores", "2", *plugin)
    assert made.returncode == 0, made.stdout[-3000:] + made.stderr[-3000:]
    rows = list(csv.DictReader((results / "table1" / "smoke.csv").open(encoding="utf-8")))
    assert len(rows) == 5 and all(0.5 < float(row["brightness"]) <= 1.0 for row in rows)
    assert "| Brightness |" in (results / "table1" / "smoke.md").read_text(encoding="utf-8")


@pytest.mark.slow
def test_smoke_dag_writes_labelled_figures_at_configured_sizes(smoke_run):
    import imageio.v3 as iio

    for name, panels in (("segments", 4), ("approx", 2), ("cfg", 4)):
        manifest = json.loads((smoke_run / "figures" / f"{name}.manifest.json").read_text(encoding="utf-8"))
        assert len(manifest["panels"]) == panels and all(panel["label"] for panel in manifest["panels"])
        image = iio.imread(smoke_run / "figures" / f"{name}.png")
        columns, rows = manifest["columns"], -(-panels // manifest["columns"])
        assert abs(image.shape[1] - 100 * 1.5 * columns) < 100 * 1.5  # panel_inches 1.5 at 100 dpi, tight bbox
        assert image.shape[0] > 100 * 1.5 * rows * 0.6
        metrics = list(csv.DictReader((smoke_run / "figures" / f"{name}_metrics.csv").open(encoding="utf-8")))
        assert [m["label"] for m in metrics] == [p["label"].replace("\n", ", ") for p in manifest["panels"]]
        assert all(math.isfinite(float(m["CLIP-L"])) for m in metrics)
        assert (smoke_run / "figures" / f"{name}.pdf").stat().st_size > 0
        assert (smoke_run / "figures" / f"{name}_plot.png").stat().st_size > 0


@pytest.mark.slow
def test_smoke_dag_writes_turntables_views_and_logs(smoke_run):
    videos = sorted(smoke_run.glob("runs/*/*/*/seed*/turntable.mp4"))
    # 10 Table 1 runs + 5 ablation runs (the ablations reuse the corgi prompt's sctd, cds and gcs Table 1 runs)
    assert len(videos) == 15 and all(video.stat().st_size > 0 for video in videos)
    views = sorted((smoke_run / "runs/smoke/sctd/corgi_quotes/seed0/views").glob("view_*.png"))
    assert len(views) == 6
    config = (smoke_run / "runs/smoke/sctd/corgi_quotes/seed0/config.yaml").read_text(encoding="utf-8")
    assert "$(echo rm -rf ~)" in config  # the prompt reached the run config verbatim, never a shell
    assert all(log.stat().st_size > 0 for log in smoke_run.glob("runs/*/*/*/seed*/logs/train.log"))


@pytest.mark.slow
def test_smoke_caches_stay_inside_the_results_folder(smoke_run):
    """Point-E clouds and FID reference statistics are cached under <results>, not in the working directory."""
    assert len(list((smoke_run / "cache" / "pointe").glob("*.pt"))) == 2  # one per smoke prompt
    assert list((smoke_run / "cache" / "fid").glob("*"))
    assert not (ROOT / "<results>").exists()


@pytest.mark.slow
def test_smoke_report_and_incremental_prompt_list(smoke_run, tmp_path):
    report = tmp_path / "report.html"
    made = snakemake(*SMOKE, "--config", f'pathvars={{"results": "{smoke_run}"}}', "--report", str(report))
    assert made.returncode == 0, made.stderr[-3000:]
    html = report.read_text(encoding="utf-8", errors="replace")
    assert "Table 1" in html and "Figures" in html
    if CHROMIUM:  # the report's pages, opened the way a user opens them (tests/browser.py; CI installs chromium)
        check_report_in_chromium(report, tmp_path)

    extra = tmp_path / "extra.tsv"
    extra.write_text("prompt_id\tprompt\tinit_prompt\nfox\tA fox\ta fox.\nowl\tAn owl\tan owl.\n", encoding="utf-8")
    plan = snakemake("-n", *SMOKE, "--cores", "2", "--config", f'pathvars={{"results": "{smoke_run}"}}',
                     f'prompt_sets={{"smoke": "workflow/smoke/prompts.tsv", "extra": "{extra}"}}')
    assert plan.returncode == 0, plan.stderr[-3000:]
    counts = job_counts(plan.stdout)
    assert counts["train"] == counts["render"] == 2 * 5 and counts["evaluate_run"] == 2 * 2 * 5  # only the new prompts' runs
    assert counts["init_pointe"] == 2 and counts["fid"] == 5 and counts["reference_images"] == 1
    assert counts["table1_files"] == 1 and "figure" not in counts and "tiny_models" not in counts
    assert "prompt_set=smoke," not in plan.stdout  # nothing of the finished prompt set reruns


@pytest.mark.slow
def test_runs_grouped_into_one_job_train_as_alone_and_regroup_without_training_again(smoke_run, tmp_path):
    """assets_per_job: 2 trains the two smoke prompts' SDS runs in one process: each ends where it ends trained
    alone (the smoke DAG's runs), each run's log holds its own lines, timing.json says so. Going back to one
    run per job reruns the two jobs (Snakemake sees new inputs) but trains nothing: each resumes at its end."""
    from segmentdreamer.scene.gaussians import load_ply

    results = tmp_path / "results"
    runs = {"corgi_quotes": 0, "cafe_unicode": 1}
    folders = [f"runs/smoke/sds/{prompt}/seed{seed}" for prompt, seed in runs.items()]
    targets = [str(results / folder / "finished.json") for folder in folders]
    pathvars = f'pathvars={{"results": "{results}"}}'
    grouped = snakemake(*targets, *SMOKE, "--cores", "2", "--config", pathvars, "assets_per_job=2")
    assert grouped.returncode == 0, grouped.stdout[-4000:] + grouped.stderr[-4000:]
    counts = job_counts(grouped.stdout + grouped.stderr)  # a real run prints its job stats on stderr
    assert counts.get("train_batch__smoke_sds_corgi_quotes_seed0_1") == 1 and "train" not in counts
    first = {folder: (results / folder / "gaussians.ply").read_bytes() for folder in folders}
    for index, folder in enumerate(folders):
        batched, alone = load_ply(results / folder / "gaussians.ply"), load_ply(smoke_run / folder / "gaussians.ply")
        for key in ("means", "scales", "opacities", "sh0"):
            assert (batched[key] - alone[key]).abs().max() < 1e-3, (folder, key)  # tests/test_multi_asset.py
        assert json.loads((results / folder / "timing.json").read_text())["assets_in_process"] == 2
        log = (results / folder / "logs" / "train.log").read_text(encoding="utf-8")
        assert f"asset {index + 1} of 2" in log and "one job trains 2 runs" in log
        assert folders[1 - index] not in log.split("its log:")[-1]  # the other run's lines are not here

    regrouped = snakemake(*targets, *SMOKE, "--cores", "2", "--config", pathvars)
    assert regrouped.returncode == 0, regrouped.stdout[-4000:] + regrouped.stderr[-4000:]
    assert job_counts(regrouped.stdout + regrouped.stderr).get("train") == 2
    for folder in folders:
        assert (results / folder / "gaussians.ply").read_bytes() == first[folder]
        assert "at iteration 6" in (results / folder / "logs" / "train.log").read_text(encoding="utf-8")
        assert json.loads((results / folder / "timing.json").read_text())["assets_in_process"] == 2


@pytest.mark.slow
def test_multi_run_jobs_of_different_sizes_each_train_every_member_exactly_once(smoke_run, tmp_path):
    """README's packing (assets_per_job: 4) on six prompts: a job of 4 runs and one of 2. Each job's command names
    its own runs (a shell line built from the loop variable named the last job's runs in every job: the first job
    trained 2 of its 4 and Snakemake deleted them), every member ends finished, trained from iteration 0 once."""
    prompts = tmp_path / "six.tsv"
    prompts.write_text("prompt_id\tprompt\tinit_prompt\tseed\n"
                       + "".join(f"p{i}\ta ball number {i}\ta ball\t{i % 2}\n" for i in range(6)), encoding="utf-8")
    folders = [smoke_run / f"runs/six/sds/p{i}/seed{i % 2}" for i in range(6)]
    result = snakemake(*(str(folder / "finished.json") for folder in folders), *SMOKE, "--cores", "2", "--config",
                       f'pathvars={{"results": "{smoke_run}"}}', "assets_per_job=4", f'prompt_sets={{"six": "{prompts}"}}',
                       'init={"method": "sphere"}', 'train={"sphere_points": 300}')
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    counts = job_counts(result.stdout + result.stderr)
    assert counts.get("train_batch__six_sds_p0_seed0_3") == 1 and counts.get("train_batch__six_sds_p4_seed0_1") == 1
    assert "train" not in counts
    for index, folder in enumerate(folders):
        size, position = (4, index + 1) if index < 4 else (2, index - 3)
        finished = json.loads((folder / "finished.json").read_text())
        assert finished["iterations"] == 6 and finished["finite"] and finished["skipped_iterations"] == 0
        assert json.loads((folder / "timing.json").read_text())["assets_in_process"] == size
        log = (folder / "logs" / "train.log").read_text(encoding="utf-8")
        assert log.count("==== train attempt") == 1 and f"one job trains {size} runs" in log, log
        assert log.count(f"asset {position} of {size} trained in this process") == 1 and "resuming" not in log, log
        steps = [json.loads(line)["step"] for line in (folder / "train_log.jsonl").read_text().splitlines()]
        assert steps == list(range(6)), (folder, steps)  # every iteration once: trained once, from the start

    # a run config edited by hand is refused by its train job (naming the file), never trained as the variant
    edited = folders[0] / "config.yaml"
    edited.write_text(edited.read_text(encoding="utf-8").replace("iterations: 6", "iterations: 7"), encoding="utf-8")
    rerun = snakemake(str(folders[0] / "finished.json"), *SMOKE, "--cores", "1", "--config", f'pathvars={{"results": "{smoke_run}"}}',
                      f'prompt_sets={{"six": "{prompts}"}}', 'init={"method": "sphere"}', 'train={"sphere_points": 300}')
    assert rerun.returncode != 0
    assert f"{edited}: edited after the workflow planned it" in (folders[0] / "logs" / "train.log").read_text(encoding="utf-8")
    assert not (folders[0] / "finished.json").exists()


def check_report_in_chromium(report: Path, tmp_path: Path) -> None:
    """Table 1's page shows the table with its five methods, the per-prompt plot and all ten turntables playing;
    the figures open as images; no page error on the way."""
    import imageio.v3 as iio

    from .browser import browser_page, open_report_entry

    with browser_page() as page:
        errors = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        frame = open_report_entry(page, report, "Table 1", None, "table, plot, turntables")
        table = frame.locator("table#table1").inner_text()
        assert all(name in table for name in ("SCTD", "SDS", "ISM", "CDS", "GCS")), table
        assert frame.locator("img#per-prompt").evaluate("image => image.complete && image.naturalWidth > 0")
        videos = frame.locator("#turntables video")
        assert videos.count() == 10  # 2 prompts x 5 methods
        played: set[int] = set()  # a video that decoded frames and advanced (each loops a 0.2 s ring)
        for _ in range(40):
            states = videos.evaluate_all("vs => vs.map(v => [v.readyState, v.currentTime, v.videoWidth, v.error])")
            played |= {i for i, (ready, time, width, error) in enumerate(states) if ready >= 2 and time > 0 and width == 64}
            if len(played) == 10:
                break
            page.wait_for_timeout(250)
        assert len(played) == 10 and not any(state[3] for state in states), states
        shot = tmp_path / "report_table1.png"
        page.screenshot(path=str(shot))
        page.goto(report.resolve().as_uri())
        page.get_by_text("Results", exact=True).click()
        page.get_by_text("Figures", exact=True).click()
        page.locator("a[iconname=eye]").first.click()
        page.wait_for_selector("img[src^='data:image/png']")
        shown = page.locator("img[src^='data:image/png']").first.evaluate("image => image.complete ? image.naturalWidth : 0")
        assert shown > 100 and not errors, (shown, errors)
    assert iio.imread(shot)[..., :3].astype(float).std() > 20  # drawn, not a blank or error page


def test_slurm_profile_plans_the_paper_dag_with_gpu_requests():
    """The profile's own header command (read from the file) plans every job for the cluster: no default profile's
    one-GPU serialisation (gpu=1 in total), GPU rules on the GPU partition, the rest on the CPU one."""
    header = (ROOT / "profiles" / "slurm" / "config.yaml").read_text(encoding="utf-8")
    command = re.search(r"^#\s+snakemake (.+)$", header, re.M).group(1).split()
    plan = snakemake(*command, "-n", "--config", 'pathvars={"results": "results/dryrun-paper"}', "check_models=False")
    assert plan.returncode == 0, plan.stderr[-3000:]
    assert "profiles/default" not in plan.stdout + plan.stderr
    assert job_counts(plan.stdout)["train"] == 233
    train = plan.stdout.split("rule train:")[1].split("\n\n")[0]
    assert "gpu=1" in train and "slurm_partition=gpu" in train and "runtime=180" in train
    table = plan.stdout.split("rule table1_files:")[1].split("\n\n")[0]
    assert "gpu=" not in table and "slurm_partition=cpu" in table
    # every rule that asks for a GPU has a GPU partition in the profile (the optional targets' rules too)
    profile = yaml.safe_load((ROOT / "profiles" / "slurm" / "config.yaml").read_text(encoding="utf-8"))["set-resources"]
    rules = (ROOT / "workflow" / "rules").glob("*.smk")
    gpu_rules = {name for path in rules for name, body in re.findall(r"^rule (\w+):\n(.*?)(?=^\S|\Z)", path.read_text(), re.M | re.S)
                 if "gpu=GPU_PER_JOB" in body} | {"fid_seed"}  # fid_seed: `use rule fid`
    assert gpu_rules >= {"train", "render", "fid", "gpteval3d_views"}
    assert all(profile.get(rule, {}).get("slurm_partition") == "gpu" for rule in gpu_rules), gpu_rules - {
        rule for rule, values in profile.items() if values.get("slurm_partition") == "gpu"}


@pytest.mark.slow
def test_every_gpu_job_uses_the_one_extension_folder_and_the_default_profile_loads():
    result = snakemake("-n", "--configfile", "workflow/smoke.yaml", "--config", 'pathvars={"results": "results/dryrun-robust"}')
    assert result.returncode == 0, result.stdout + result.stderr  # no --cores: the default profile gives them
    assert "profiles/default" in result.stdout + result.stderr
    folders = re.findall(r"TORCH_EXTENSIONS_DIR=(\S+) segmentdreamer (train|render|build-extensions)", result.stdout)
    jobs = {job for _, job in folders}
    assert jobs == {"train", "render", "build-extensions"}
    assert {folder for folder, _ in folders} == {"results/dryrun-robust/torch_extensions"}
    # torch.compile's cache lives under <results> too, so later jobs (and other nodes) reuse the first one's graphs
    compiling = re.findall(r"TORCHINDUCTOR_CACHE_DIR=(\S+) TORCH_EXTENSIONS_DIR=\S+ segmentdreamer (train|render)", result.stdout)
    assert {job for _, job in compiling} == {"train", "render"}
    assert {folder for folder, _ in compiling} == {"results/dryrun-robust/cache/inductor"}
