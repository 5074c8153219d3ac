"""Planning a sweep: find and validate every config under PATH, then decide per run what to do.

Nothing runs if one config is bad. Each run (experiment x seed, identified by its
run_id) is then either skipped (complete, or a status the options do not redo),
held (another live process trains it now: the sweep waits for it, see
trainer.sweep), or to do. What is to do becomes tasks (the seeds of one experiment
that start the same way), and tasks of one shape (`config.shape_key`: networks that differ in
seed, initial bias, learning rate, init, max-norm or hidden activation share one) are stacked into
groups, each trained by one worker as one computation (`training.run_group`),
split so that every worker has a group and each group fits in memory.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ibstore import layout
from ibstore.index import scan
from ibstore.lifecycle import Action, Redo, action, holder_text
from ibstore.lock import LOCK_FILE, is_live
from ibstore.record import RunRecord, Status
from ibstore.scan import RUN_JSON
from ibstore.text import terminal_text
from trainer import checkpoint, config, datasets, estimators
from trainer.config import MEMORY_SHARE, Experiment, ExperimentConfig, memory_estimate, physical_memory, shape_key


class SweepError(ValueError):
    """Bad sweep input (no configs, Ray missing or unreachable, ...): one line, exit status 2."""


@dataclass(frozen=True)
class Task:
    """Seeds of one experiment to train together.

    `resume`: continue from their common checkpoint. `redo`: which earlier outcomes of a
    run with the same id this task may replace (checked again under the run's lock when
    training starts, so a run another process completed meanwhile is kept)."""

    experiment: Experiment
    seeds: tuple[int, ...]
    resume: bool = False
    redo: Redo = Redo()

    @property
    def run_ids(self) -> list[str]:
        return [self.experiment.run_id(seed) for seed in self.seeds]


@dataclass(frozen=True)
class Group:
    """Tasks of one shape (and one `redo`), trained together as one stacked computation.
    `data_sha256`: the SHA-256 of its dataset as the plan loaded it (`load_plan_data`), which its
    worker checks: a data file replaced while a sweep ran split an attacker's cohort over two datasets."""

    tasks: tuple[Task, ...]
    data_sha256: str | None = None

    @property
    def run_ids(self) -> list[str]:
        return [run_id for task in self.tasks for run_id in task.run_ids]

    @property
    def redo(self) -> Redo:
        return self.tasks[0].redo


@dataclass
class Plan:
    tasks: list[Task]
    run_ids: list[str] = field(default_factory=list)                # every planned run, in order
    skipped: dict[str, list[str]] = field(default_factory=dict)     # status -> run ids not redone
    held: dict[str, str] = field(default_factory=dict)              # run id -> who holds it
    # run id -> its record's writer stamp when planned (`writer_stamp`; None: no record): another one
    # means another process trained it since (trainer.sweep.plan_held_again)
    stamps: dict[str, tuple | None] = field(default_factory=dict)
    # run id -> the cohort its record names, of the skipped runs whose record names another cohort
    # than their config (a cohort is not part of a run's id: a renamed cohort's runs are found done)
    elsewhere: dict[str, str | None] = field(default_factory=dict)
    # the run id its config names -> the completed run of the same networks under another name (its
    # grid written in another key order or number form: `same_networks`), planned in its place
    same_as: dict[str, str] = field(default_factory=dict)
    # run id -> its config and the data_sha256 it recorded, of the runs that trained on a file
    # (`dataset_path`) and are kept (completed) or continued (resumed): `check_data_unchanged` compares
    # the file as it is now
    trained_on_files: dict[str, tuple[ExperimentConfig, str]] = field(default_factory=dict)

    def __add__(self, other: Plan) -> Plan:
        """Two plans of different runs as one."""
        skipped = {status: self.skipped.get(status, []) + other.skipped.get(status, [])
                   for status in {**self.skipped, **other.skipped}}
        return Plan(self.tasks + other.tasks, self.run_ids + other.run_ids, skipped, {**self.held, **other.held},
                    {**self.stamps, **other.stamps}, {**self.elsewhere, **other.elsewhere},
                    {**self.same_as, **other.same_as}, {**self.trained_on_files, **other.trained_on_files})

    def note_data(self, run_id: str, settings: ExperimentConfig, record: RunRecord) -> None:
        """Keep the data_sha256 `record` holds if its run trained on a file (`trained_on_files`)."""
        if settings.dataset_path and record.data_sha256:
            self.trained_on_files[run_id] = settings, record.data_sha256

    @property
    def planned(self) -> int:
        return len(self.run_ids)

    @property
    def to_do(self) -> int:
        return sum(len(task.seeds) for task in self.tasks)


def config_files(path: str | Path) -> list[Path]:
    """PATH itself if it is a file, else every *.json under it (recursive, sorted)."""
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise SweepError(f"{str(path)!r} is neither a config file nor a folder of configs")
    files = sorted(p for p in path.rglob("*.json") if p.is_file())
    if not files:
        raise SweepError(f"no config files (*.json) under {str(path)!r}")
    return files


# A plan this large is confirmed with --yes before anything happens (a typo in a grid can
# multiply a cohort by 1000).
CONFIRM_RUNS = 10_000
# Below the smallest run folder the trainer leaves (run.json, the lock and five one-epoch tables,
# measured: bench/RESULTS.md): a plan whose runs could not fit on the root's disk at this size is
# refused, as is one beyond MAX_RUNS, whose planning alone (a validated config per experiment)
# would take gigabytes.
MIN_RUN_BYTES = 16 * 1024
MAX_RUNS = 1_000_000


def count_runs(path: str | Path, overrides: list[str] = ()) -> int:
    """How many runs the configs under PATH plan (grid combinations x seeds), each with the
    `--set KEY=VALUE` overrides applied, counted from the grids without expanding them; a config
    that cannot be read raises ConfigError."""
    total = 0
    for file in config_files(path):
        try:
            raw = config.apply_overrides(config.load_file(file), list(overrides))
        except config.ConfigError as error:
            raise config.ConfigError(f"{file}: {error}") from None
        total += runs_of(raw)
    return total


def runs_of(raw: dict[str, Any]) -> int:
    """How many runs one raw config plans (grid combinations x seeds), without expanding it."""
    grid = raw.get("grid") if isinstance(raw.get("grid"), dict) else {}
    combinations = 1
    for values in grid.values():   # (a grid over seed or n_runs is refused when planned)
        combinations *= len(values) if isinstance(values, list) and values else 1
    return combinations * _count(raw.get("n_runs", 1))


def _count(value: Any) -> int:
    """A seed count as planning would take it (validation refuses bad ones later)."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 1 else 1


def check_plan_size(runs: int, root: Path, confirmed: bool) -> None:
    """SweepError unless `runs` runs are a plan to start: confirmed above CONFIRM_RUNS, and
    within MAX_RUNS and what the root's disk could hold."""
    free = _free_bytes(root)
    if runs > MAX_RUNS:
        raise SweepError(f"refused: the configs plan {runs:,} runs, more than {MAX_RUNS:,} "
                         f"(planning alone would take {runs * 2048 / 1e9:.0f} GB); split the grid")
    if free is not None and runs * MIN_RUN_BYTES > free:
        raise SweepError(f"refused: the configs plan {runs:,} runs; at {MIN_RUN_BYTES // 1024} kB each at least, "
                         f"they need {runs * MIN_RUN_BYTES / 1e9:.3g} GB and the results root's disk has "
                         f"{free / 1e9:.3g} GB free")
    if runs > CONFIRM_RUNS and not confirmed:
        raise SweepError(f"the configs plan {runs:,} runs (more than {CONFIRM_RUNS:,}); "
                         f"run again with --yes to start them")


def _free_bytes(root: Path) -> int | None:
    """Free bytes on the filesystem that holds (or would hold) `root`."""
    for folder in (root, *root.absolute().parents):
        try:
            info = os.statvfs(folder)
        except OSError:
            continue
        return info.f_bavail * info.f_frsize
    return None


def load_experiments(path: str | Path, overrides: list[str] = ()) -> list[Experiment]:
    """Every experiment under PATH (grids expanded, seeds listed), each config with the `--set
    KEY=VALUE` overrides applied (a built-in cohort, shortened: `--set epochs=2000`), all validated
    before any runs."""
    experiments = []
    for file in config_files(path):
        try:
            planned = config.plan(config.apply_overrides(config.load_file(file), list(overrides)))
        except config.ConfigError as error:
            raise config.ConfigError(f"{file}: {error}") from None
        ignored = sorted({key for experiment in planned for key in experiment.ignored})
        if ignored:
            print(terminal_text(f"note: {file}: ignoring keys with no meaning here: {', '.join(ignored)}"),
                  file=sys.stderr)
        experiments += planned
    return experiments


def plan_sweep(experiments: list[Experiment], root: Path, redo: Redo = Redo(), resume: bool = False,
               only: set[str] | None = None, now: float | None = None) -> Plan:
    """Which runs are still to do, grouped into tasks (`only`: plan just these run ids).

    Per run, ibstore.lifecycle.action on its status as shown: never started, or an outcome
    `redo` trains again: to do. Interrupted with `redo.interrupted`: with `resume`, continued
    from the newest checkpoint, else (or if there is none) restarted. Held by a live
    process: not touched; listed in `held` with who holds it. Else skipped.
    Tasks of one shape are planned next to each other, ordered by activation (`stack_order`).
    """
    scanned = scan(root, now=now)
    records = {run.run_id: run for run in scanned.runs}
    unusable = {problem.run_id: problem for problem in scanned.problems
                if problem.path.endswith(f"/{RUN_JSON}") and problem.run_id not in records}
    damaged: list[str] = []
    # a run of these networks completed under another name stands in for the config's own, unless
    # `redo` trains completed runs again (--force), which then trains the config's own run
    completed = same_networks(records) if action(Status.COMPLETED, redo) is Action.KEEP else {}
    plan = Plan(tasks=[])
    seen: set[str] = set()
    for experiment in sorted(experiments, key=stack_order):
        fresh, resumed = [], {}  # resumed: checkpoint epoch -> seeds
        for seed in experiment.seeds:
            run_id = experiment.run_id(seed)
            if run_id in seen or (only is not None and run_id not in only):  # the same experiment in two files
                continue
            seen.add(run_id)
            other = completed.get(networks_of(run_id), run_id)
            # another cohort's run stays its own (an attacker's cohort lost its baseline group to one)
            if (run_id not in records and other != run_id and records[other].cohort == experiment.cohort
                    and same_config(records[other], experiment)):
                if other in seen:                  # two configs of these networks: planned once
                    continue
                seen.add(other)
                plan.same_as[run_id] = run_id = other
            plan.run_ids.append(run_id)
            record = records.get(run_id)
            if record is None and run_id in unusable:
                damaged.append(f"{unusable[run_id].path}: {unusable[run_id].problem}")
            elif record is None and (held := _results_without_record(root, run_id)):
                damaged.append(held)
            plan.stamps[run_id] = writer_stamp(record)
            todo = action(record and record.status, redo)
            if todo is Action.HELD:
                plan.held[run_id] = holder_text(root, record)
                plan.note_data(run_id, experiment.config, record)   # it trains on the file as it was then
            elif todo is Action.KEEP:
                plan.skipped.setdefault(record.status.value, []).append(run_id)
                if record.cohort != experiment.cohort:
                    plan.elsewhere[run_id] = record.cohort
                if record.status is Status.COMPLETED:
                    plan.note_data(run_id, experiment.config, record)
            else:
                epoch = start_epoch(root, experiment, run_id, todo, resume)
                (resumed.setdefault(epoch, []) if epoch else fresh).append(seed)
                if epoch:
                    plan.note_data(run_id, experiment.config, record)
        if fresh:
            plan.tasks.append(Task(experiment, tuple(fresh), redo=redo))
        plan.tasks += [Task(experiment, tuple(seeds), resume=True, redo=redo) for seeds in resumed.values()]
    if damaged:
        # Training such a run clears its folder: a hand-cut run.json had cost a completed run and
        # the estimates added to it since (an attacker's); what it held is not known, so keep it
        raise SweepError(terminal_text(
            f"refused: {len(damaged)} planned run folder(s) hold a run.json that cannot be used, or none beside "
            "their results, and training would clear what they hold: " + "; ".join(damaged) + ". Repair the "
            "run.json, or move the folder out of the root's runs/ to train the run again."))
    _note_group_mates(plan, experiments, records)
    return plan


def _results_without_record(root: Path, run_id: str) -> str | None:
    """What a run folder without run.json holds where it is more than a starting writer's `.lock`
    (results, checkpoints, activations: a run.json deleted by hand, an attacker's, where the sweep
    had cleared a completed run and its estimates); None where it holds nothing else."""
    run_dir = layout.run_dir(root, run_id)
    try:
        names = [entry.name for entry in os.scandir(run_dir)]
    except OSError:
        return None
    if RUN_JSON in names or is_live(run_dir):   # another process started it since the scan (a reviewer's)
        return None
    # a writer killed before its first run.json left its .lock, and maybe a temporary file
    kept = sorted(name for name in names if name != LOCK_FILE and not (name.startswith(".") and name.endswith(".tmp")))
    if not kept:
        return None
    shown = ", ".join(kept[:5]) + (f" and {len(kept) - 5} more" if len(kept) > 5 else "")
    return f"{run_dir}: no run.json, beside {shown}"


def _note_group_mates(plan: Plan, experiments: list[Experiment], records: dict[str, RunRecord]) -> None:
    """Note the data of the runs of the plan's seed groups that it does not plan (seeds beyond its
    n_runs, or another sweep's), but failed ones: they stay in the group beside what it trains (an
    attacker's --force of seeds 0-1 of four trained them on a changed file beside seeds 2-3 on the
    former one; a second attacker's sweep of seeds 2-3 beside another still training seeds 0-1)."""
    groups = {config.group_id(e.name, e.config.model_dump()): e for e in experiments}
    planned = set(plan.run_ids)
    for run_id, record in records.items():
        experiment = groups.get(record.group_id)
        if experiment is not None and run_id not in planned and record.status is not Status.FAILED:
            plan.note_data(run_id, experiment.config, record)


def networks_of(run_id: str) -> str:
    """What a run id says of its networks: its config hash and seed (`config.run_id`: the name's
    slug, then `<hash>-s<seed>`), without the name."""
    return "-".join(run_id.rsplit("-", 2)[-2:])


def same_networks(records: dict[str, RunRecord]) -> dict[str, str]:
    """The completed runs of `records` by `networks_of`: a config's run of the same config hash and
    seed under another name (an attacker's: the same grid with its keys in another order, or 0.0 for
    0, named its runs anew and trained them again) is the same computation, already done. Only a
    completed run is found: one another process trains now, or interrupted or failed, is not."""
    done = sorted(run_id for run_id, record in records.items() if record.status is Status.COMPLETED)
    return {networks_of(run_id): run_id for run_id in reversed(done)}     # the first by name


def same_config(record: RunRecord, experiment: Experiment) -> bool:
    """Whether `record` trained `experiment`'s config, apart from the seed and n_runs (which the
    config hash leaves out too): the hash in a run id is 32 bits, and a reviewer found two learning
    rates sharing one among 400,000."""
    def identity(config: dict) -> str:
        return json.dumps({k: v for k, v in config.items() if k not in ("seed", "n_runs")}, sort_keys=True)
    return identity(record.config) == identity(json.loads(json.dumps(experiment.config.model_dump())))


def writer_stamp(record: RunRecord | None) -> tuple | None:
    """What every training writer of a run changes in its record, and nothing else does: its start,
    its heartbeat (set when it takes the run, resumed or not, which keeps started_at) and its
    process. `trainer estimate` and `trainer compact` hold a run without writing run.json."""
    return None if record is None else (record.started_at, record.heartbeat_at, record.host, record.pid)


def stack_order(experiment: Experiment) -> tuple[str, str]:
    """Experiments of one shape next to each other and, within it, those of one hidden activation:
    a stack then applies each activation to one contiguous block of networks
    (trainer.model.per_network_activation)."""
    return shape_key(experiment.config), experiment.config.activation_fn


def start_epoch(root: Path, experiment: Experiment, run_id: str, todo: Action, resume: bool) -> int:
    """0 (from the start), or the checkpoint epoch an interrupted run continues from with `resume`."""
    if todo is Action.CONTINUE and resume and resumable(experiment.config):
        return checkpoint.latest_common_epoch(root, [run_id])
    return 0


def resumable(config: ExperimentConfig) -> bool:
    """Checkpoints are kept, and no estimator bins over the whole run's range: those rows are
    computed when a run ends, from every logged epoch, which a resumed process has not seen."""
    return config.save_checkpoints and not any(
        estimators.needs_run_range(e["name"], e["params"]) for e in config.estimators)


def stack_groups(tasks: list[Task], workers: int, memory: int | None = None,
                 shapes: dict[tuple, tuple[int, int, int]] | None = None,
                 sha256: dict[tuple, str] | None = None) -> list[Group]:
    """Tasks of one shape stacked into groups: a shape's networks are split into as many
    groups as there are workers (when it has that many networks), each small enough that
    `workers` such groups fit in `memory` (default: config.MEMORY_SHARE of this machine's) by
    config.memory_estimate: per worker its fixed part, per network the cost of one more network.
    `shapes`: the loaded datasets' shapes by config.data_key, which size a "file" dataset's groups
    (without them, its size unknown, a shape is one group per worker); `sha256`: their digests by
    config.data_key, each group's `data_sha256`."""
    memory = int(MEMORY_SHARE * (physical_memory() or 0)) if memory is None else memory
    by_shape: dict[tuple[str, Redo], list[tuple[Task, int]]] = {}
    for task in tasks:
        by_shape.setdefault((shape_key(task.experiment.config), task.redo), []).extend((task, s) for s in task.seeds)
    groups = []
    for networks in by_shape.values():
        experiment = networks[0][0].experiment
        one = _estimate(experiment.config, 1, shapes)
        # What one more network adds; the rest (TensorFlow, the MI temporaries) each worker pays once.
        per_network = _estimate(experiment.config, 2, shapes) - one if one else None
        fit = max(1, (memory // workers - (one - per_network)) // per_network) \
            if memory and per_network else len(networks)
        n_groups = max(min(workers, len(networks)), -(-len(networks) // fit))
        size = -(-len(networks) // n_groups)
        digest = (sha256 or {}).get(config.data_key(experiment.config))
        for start in range(0, len(networks), size):
            groups.append(Group(_as_tasks(networks[start:start + size]), digest))
    return groups


def workers_that_fit(groups: list[Group], workers: int, memory: int | None = None,
                     shapes: dict[tuple, tuple[int, int, int]] | None = None) -> int:
    """How many of `workers` may train `groups` at once: the most k for which the k largest groups'
    estimates (config.memory_estimate) fit in `memory` (default: MEMORY_SHARE of this machine's),
    at least 1. `stack_groups` splits a shape to fit, but a group of one network that needs more
    than a worker's share cannot be split (an attacker's two groups of one network, 16 GB each,
    trained at once on a 23.5 GiB machine); a group whose size is unknown (a "file" dataset not
    in `shapes`) counts as fitting."""
    memory = int(MEMORY_SHARE * (physical_memory() or 0)) if memory is None else memory
    needs = sorted((_estimate(group.tasks[0].experiment.config, sum(len(task.seeds) for task in group.tasks), shapes)
                    or 0 for group in groups), reverse=True)
    fitting = [k for k in range(1, min(workers, len(needs)) + 1) if sum(needs[:k]) <= memory]
    return max(fitting, default=1) if memory and needs else workers


@dataclass
class PlanData:
    """What loading a plan's datasets tells, by config.data_key: each dataset read from a path
    (`dataset_path`), its shape (the stacked groups are sized by them) and SHA-256 (each group's
    worker checks it: Group.data_sha256)."""
    shapes: dict[tuple, tuple[int, int, int]] = field(default_factory=dict)
    sha256: dict[tuple, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)     # what the user should know of the data (unscaled features)

    def say_notes(self) -> None:
        for note in self.notes:
            print(terminal_text(f"note: {note}"), file=sys.stderr)


def load_plan_data(tasks: list[Task], strict: bool = False, known: PlanData | None = None) -> PlanData:
    """Load each dataset `tasks` train on, once, before any run is taken (a reviewer's: a file's
    configs stacked into one group too large, which its worker refused, every run failed).
    `strict` (`trainer run`, and a sweep on local workers, which read this machine's files): a data
    file missing or malformed is bad input (DatasetError, exit 2) with nothing written, not a `failed`
    run per seed left in the root for good (a new user's 18); so is a data file too large for this
    machine's memory (ConfigError). Else (a Ray sweep, whose workers may see files this machine does
    not, and a sweep's later rounds) one that does not load is left to the worker, which records its
    runs failed with the loader's reason. `known`: what an earlier round loaded, kept as it was (its
    groups' digests), and not loaded again."""
    data = PlanData(dict(known.shapes), dict(known.sha256)) if known is not None else PlanData()
    loaded = set(data.sha256)
    for task in tasks:
        settings = task.experiment.config
        key = config.data_key(settings)
        if key in loaded or not (strict or settings.dataset_path):
            continue
        loaded.add(key)
        try:
            dataset = datasets.load_data(settings)
        except (datasets.DatasetError, OSError):
            if strict:
                raise
            continue
        if settings.dataset == "file" and strict:   # its size is known now: the check planning could not make
            config.check_memory(settings, dataset.shape)
        note = (datasets.unscaled_note(dataset, f"data file {settings.dataset_path!r}")
                if settings.dataset == "file" else None)
        if note and note not in data.notes:      # one file under several splits (split_seed) is one note
            data.notes.append(note)
        if settings.dataset_path:     # a file (mnist's too, with a path): its groups hold their data to it
            data.shapes[key], data.sha256[key] = dataset.shape, dataset.sha256
    return data


def check_data_unchanged(plan: Plan, data: PlanData | None = None, trained_beside: bool = False) -> None:
    """Refuse (DatasetError, exit 2, nothing written) a plan that keeps completed runs, continues
    interrupted ones (--resume) or waits for runs another process trains, of a data file that changed
    since they trained on it, or trains beside seeds of its groups it does not plan (any but failed,
    `_note_group_mates`): their SHA-256
    (RunRecord.data_sha256) is not the file's now. The run id holds the file's path, not its content:
    a new user's edited data file had its runs skipped as complete, their results of the former data,
    and a resumed run continued on other data than its checkpoint's. The file's SHA-256 is `data`'s,
    where the plan loaded it (`load_plan_data`): one read for the check and for the groups' workers
    (a file renamed over between two reads put one group on two datasets). A file that no longer
    loads here (moved, or on another Ray node) is not compared: nothing trains on it here. A run
    recorded without a digest (before stop 63, or killed before its data loaded) is not compared
    either. `trained_beside`: the sweep has trained this data's other runs already (a later round,
    after a wait), so their groups hold both versions now, which the message says."""
    changed: dict[str, list[str]] = {}
    now: dict[tuple, str | None] = dict(data.sha256) if data is not None else {}
    for run_id, (settings, recorded) in plan.trained_on_files.items():
        key = config.data_key(settings)
        if key not in now:
            try:
                now[key] = datasets.load_data(settings).sha256
            except (datasets.DatasetError, OSError):
                now[key] = None
        if now[key] is not None and now[key] != recorded:
            changed.setdefault(settings.dataset_path, []).append(run_id)
    if changed:
        path, run_ids = next(iter(changed.items()))
        held = [run_id for run_id in run_ids if run_id in plan.held]
        # --force does not touch a run another process holds: it is waited for, or stopped, first
        held_text = (f"; {len(held)} of them another process trains now ({terminal_text(held[0])}"
                     f"{', ...' if len(held) > 1 else ''}): wait for it to end, or stop it, first" if held else "")
        named = (f"data file {terminal_text(repr(path))} changed since {len(run_ids)} run(s) of this plan's seed "
                 f"groups trained on it ({terminal_text(run_ids[0])}{', ...' if len(run_ids) > 1 else ''})")
        advice = (f": this sweep trained runs on the file as it is before it waited for them, so their groups may "
                  f"hold both versions now (a report names them); train those groups again from the start on one "
                  f"file (--force, with n_runs covering their seeds){held_text}" if trained_beside else
                  f": a completed run's results are of the former data, an interrupted one would continue on other "
                  f"data, and a group would hold both. Restore the file, give the new data another path, or train "
                  f"those runs again from the start on the file as it is now (--force, with n_runs covering their "
                  f"seeds){held_text}")
        others = f"; {len(changed) - 1} other data file(s) changed too" if len(changed) > 1 else ""
        raise datasets.DatasetError(named + advice + others)


def _estimate(experiment_config: ExperimentConfig, networks: int,
              shapes: dict[tuple, tuple[int, int, int]] | None) -> int | None:
    """config.memory_estimate of `networks` of this config stacked, on its dataset's shape in
    `shapes` where it is there."""
    return memory_estimate(experiment_config.model_copy(update={"n_runs": networks}),
                           (shapes or {}).get(config.data_key(experiment_config)))


def _as_tasks(networks: list[tuple[Task, int]]) -> tuple[Task, ...]:
    """Consecutive networks of one task back into one task with those seeds."""
    tasks: list[Task] = []
    for task, seed in networks:
        if tasks and tasks[-1].experiment is task.experiment and tasks[-1].resume == task.resume:
            tasks[-1] = dataclasses.replace(tasks[-1], seeds=tasks[-1].seeds + (seed,))
        else:
            tasks.append(dataclasses.replace(task, seeds=(seed,)))
    return tuple(tasks)
