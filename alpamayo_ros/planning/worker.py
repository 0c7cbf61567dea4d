"""The planning worker: runs the policy off the caller's thread, newest input wins.

The planner node's timer hands each cycle's input set to `submit` and returns at once; one
worker thread runs `Planner.run` on the newest input it has. An input still waiting when a
newer one arrives is dropped and counted (the model is slower than the rate). With
max_batch > 1 and a policy that takes several requests, inputs that arrive while the
model runs are planned together in one batch instead (each then keeps its own t0).

planning_mode "two_lane" (one GPU, one thread, cooperative): the trajectory lane plans each
submitted input set with the newest causal chain teacher-forced (Planner.run with a Chain:
prefill + expert, no decoding); the reasoning lane writes a fresh chain on the newest inputs
(Planner.reasoning_steps) one step at a time, its prefill or one token, only while no input
waits, and hands the chain over when it is done. A trajectory plan waits for at most one
reasoning step. Until the first chain exists, plans are full plans (they also give the first
chain). When the trajectory lane takes (nearly) the whole cycle, an input always waits and
the chain would never be refreshed: once the newest input is more than max_chain_age newer
than the chain, reasoning steps also run while an input waits, for up to stale_chain_slice
seconds after each plan (at least one step), so the chain keeps being refreshed at the cost
of some plan rate (the newest input still wins; the others are dropped cycles). Inputs of a
new timeline (PlanInputs.timeline: the clock jumped back) drop the chain and anything still
waiting: the next plan is a full plan again, and a chain being written for the old timeline
is abandoned.

Questions about the scene (Alpamayo 1.5) share the same thread and GPU without delaying
plans past their deadline: a question advances one step (its prefill, or one answer token:
Policy.ask_steps) at a time, only while no plan waits, and only when the step's expected
time plus a plan's expected time fits within max_plan_age; a plan that arrives meanwhile
waits for at most that one step. A question that cannot finish within its timeout is
refused with the reason.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, field

from alpamayo_ros.planning.planner import Chain, PlanInputs, Planner, PlanOutcome
from alpamayo_ros.planning.requests import Answer, QuestionRequest

log = logging.getLogger(__name__)

OutcomeSink = Callable[[PlanOutcome], None]
# Called once per question on the worker thread: (answer, "") or (None, why it was refused).
AnswerSink = Callable[[Answer | None, str], None]


@dataclass
class QuestionJob:
    """A question waiting for, or getting, GPU time. timeout: wall seconds from submission
    within which it must be answered."""

    request: QuestionRequest
    on_answer: AnswerSink
    max_tokens: int
    timeout: float
    submitted: float = field(default_factory=time.monotonic)
    steps: Generator[str, None, Answer] | None = None
    next_step: str = "prefill"


class StepTimes:
    """Running estimates (s) of a plan and of a question's prefill and token steps: the
    largest of the last few of each, so a plan's deadline is protected from the slow end."""

    def __init__(self, keep: int = 8) -> None:
        self.keep = keep
        self._times: dict[str, list[float]] = {}

    def add(self, kind: str, seconds: float) -> None:
        times = self._times.setdefault(kind, [])
        times.append(seconds)
        del times[: -self.keep]

    def estimate(self, kind: str, default: float | None = None) -> float | None:
        times = self._times.get(kind)
        return max(times) if times else default


class PlanningWorker:
    """A daemon thread that plans the newest submitted inputs and hands each outcome to
    `on_outcome` (called on the worker thread)."""

    def __init__(
        self,
        planner: Planner,
        on_outcome: OutcomeSink,
        max_batch: int = 1,
        planning_mode: str = "full",
        max_chain_age: float = math.inf,
        stale_chain_slice: float = 0.0,
    ) -> None:
        """max_chain_age: seconds of input time; stale_chain_slice: wall seconds of reasoning
        steps a waiting input may wait for after each plan while the chain is older than
        max_chain_age (0: never; see the module docstring)."""
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        if not max_chain_age > 0:
            raise ValueError(f"max_chain_age must be > 0 s, got {max_chain_age}")
        if not stale_chain_slice >= 0:
            raise ValueError(f"stale_chain_slice must be >= 0 s, got {stale_chain_slice}")
        self.max_chain_age = max_chain_age
        self.stale_chain_slice = stale_chain_slice
        self._slice_left = 0.0  # reasoning seconds left before the next waiting plan
        self.stale_steps = 0  # reasoning steps run while an input waited
        self._stale_step = False  # the running reasoning step is one of those
        if planning_mode not in ("full", "two_lane"):
            raise ValueError(f"planning_mode must be full or two_lane, got {planning_mode!r}")
        self.planning_mode = planning_mode
        self.chain: Chain | None = None  # the newest causal chain (two_lane)
        self.chains = 0  # chains written by the reasoning lane
        self.last_chain_seconds = math.nan  # wall s the newest took, prefill to hand-over
        self._chain_started = 0.0
        self._latest: PlanInputs | None = None  # the newest inputs (the reasoning lane's)
        self._reasoned_t0 = -math.inf  # input time of the newest chain attempt that failed
        self._timeline = 0  # PlanInputs.timeline of the newest inputs
        self._question_turn = False  # alternates reasoning and question steps
        self._reasoning: tuple[PlanInputs, Generator[str, None, Chain | None]] | None = None
        self.planner = planner
        self.on_outcome = on_outcome
        self.max_batch = max_batch
        self.dropped = 0
        self.completed = 0
        self._pending: list[PlanInputs] = []
        self._busy = False
        self._busy_since = 0.0  # time.monotonic() when the running inference started
        self._stop = False
        self._question: QuestionJob | None = None
        self.times = StepTimes()
        self.questions_answered = 0
        self.questions_refused = 0
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._loop, name="alpamayo-planning", daemon=True)
        self._thread.start()

    @property
    def busy(self) -> bool:
        """True while the policy runs."""
        with self._cond:
            return self._busy

    def running_for(self, wall: float | None = None) -> float:
        """Seconds the current inference has been running (0 when idle); `wall`:
        time.monotonic() now."""
        with self._cond:
            if not self._busy:
                return 0.0
            return (time.monotonic() if wall is None else wall) - self._busy_since

    def submit(self, inputs: PlanInputs) -> bool:
        """Queue `inputs` (never blocks). Returns False when this dropped an older input
        that had not started yet."""
        with self._cond:
            if inputs.timeline != self._timeline:  # the clock jumped back: forget the old
                self._timeline = inputs.timeline
                self._pending.clear()
                self.chain = None
                self._reasoned_t0 = -math.inf
                self._slice_left = 0.0
            dropped = False
            if len(self._pending) >= self.max_batch:
                self._pending.pop(0)
                self.dropped += 1
                dropped = True
            self._pending.append(inputs)
            self._latest = inputs
            self._cond.notify()
        return not dropped

    def ask(
        self,
        request: QuestionRequest,
        on_answer: AnswerSink,
        max_tokens: int = 256,
        timeout: float = 30.0,
    ) -> bool:
        """Queue a question (never blocks); `on_answer` is called on the worker thread with
        the answer, or with None and the reason it was refused. Returns False (and calls
        on_answer at once) when another question is already being answered."""
        if not hasattr(self.planner.policy, "ask_steps"):
            on_answer(None, "the model cannot answer questions")
            return False
        with self._cond:
            busy = self._question is not None or self._stop
            if not busy:
                self._question = QuestionJob(request, on_answer, max_tokens, timeout)
                self._cond.notify()
        if busy:
            self.questions_refused += 1
            on_answer(None, "another question is being answered; ask again when it is done")
        return not busy

    def stop(self, timeout: float = 5.0) -> bool:
        """Stop: pending inputs are dropped, the running plan is abandoned at its next
        token (Planner.cancel) and its outcome never handed on. Returns True when the
        thread ended within `timeout` seconds."""
        with self._cond:
            self._stop = True
            self._pending.clear()
            self._cond.notify()
        self.planner.cancel.set()
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Block until nothing is pending or running (tests, shutdown)."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._pending and not self._busy, timeout)

    def _current(self, chain: Chain | None) -> bool:
        """A chain written for inputs of the newest timeline."""
        return chain is not None and chain.timeline == self._timeline

    def _chain_stale(self) -> bool:
        """two_lane: the newest input is more than max_chain_age newer than the chain."""
        latest, chain = self._latest, self.chain
        return (
            latest is not None and chain is not None and latest.t0 - chain.t0 > self.max_chain_age
        )

    def _stale_turn(self) -> bool:
        """A reasoning step goes before a waiting input (see the module docstring)."""
        return self._slice_left > 0 and self._chain_stale() and self._reasoning_due()

    def _reasoning_due(self) -> bool:
        """two_lane: a chain is being written, or newer inputs than the chain's wait for one."""
        if self.planning_mode != "two_lane":
            return False
        if self._reasoning is not None:
            return True
        latest = self._latest
        done = max(self._reasoned_t0, self.chain.t0 if self.chain is not None else -math.inf)
        return latest is not None and latest.t0 > done

    def _loop(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(
                    lambda: self._pending or self._stop or self._question or self._reasoning_due()
                )
                if self._stop:
                    job, self._question = self._question, None
                    if job is not None:
                        self._refuse(job, "the planner is shutting down")
                    if self._reasoning is not None:
                        self._reasoning[1].close()
                        self._reasoning = None
                    return
                if self._pending and self._stale_turn():
                    batch, job, reason = [], None, True  # the inputs keep waiting
                    self.stale_steps += 1
                    self._stale_step = True
                else:
                    batch, self._pending = self._pending, []
                    job = self._question if not batch else None
                    reason = not batch and self._reasoning_due()
                if reason and job is not None:  # both wait: take turns, step by step
                    self._question_turn = not self._question_turn
                    reason = not self._question_turn
                self._busy = True
                self._busy_since = time.monotonic()
            if batch:
                self._plan(batch)
            elif reason:
                self._reasoning_step()
            elif job is not None:
                self._question_step(job)
            else:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def _plan(self, batch: list[PlanInputs]) -> None:
        started = time.monotonic()
        chain = self.chain if self.planning_mode == "two_lane" else None
        try:
            for outcome in self.planner.run_batch(batch, chain):
                if self._current(outcome.chain) and self.planning_mode == "two_lane":
                    assert outcome.chain is not None
                    if self.chain is None or outcome.chain.t0 > self.chain.t0:
                        self.chain = outcome.chain  # a full plan's chain (before the first)
                if self._stop:  # shutting down: nobody to publish to
                    break
                self.on_outcome(outcome)
                self.completed += 1
        except Exception:  # never let the worker die: the node must keep publishing
            log.exception("planning worker: publishing an outcome failed")
        finally:
            self.times.add("plan", time.monotonic() - started)
            with self._cond:
                self._slice_left = self.stale_chain_slice if self.planning_mode == "two_lane" else 0
                self._busy = False
                self._cond.notify_all()

    def _reasoning_step(self) -> None:
        """One step of the reasoning lane: start a chain on the newest inputs, or advance the
        running one; a finished chain becomes the trajectory lane's."""
        started = time.monotonic()
        try:
            if self._reasoning is not None and self._reasoning[0].timeline != self._timeline:
                self._reasoning[1].close()  # written for inputs of an abandoned timeline
                self._reasoning = None
                if not self._reasoning_due():  # a full plan already gave the new one's chain
                    return
            if self._reasoning is None:
                inputs = self._latest
                assert inputs is not None
                self._reasoning = (inputs, self.planner.reasoning_steps(inputs))
                self._chain_started = started
            inputs, steps = self._reasoning
            try:
                next(steps)
            except StopIteration as done:
                self._reasoning = None
                chain = done.value
                if chain is None:  # the policy cannot write chains: plan full plans
                    self.planning_mode = "full"
                elif self._current(chain) and (self.chain is None or chain.t0 >= self.chain.t0):
                    self.chain = chain
                    self.chains += 1
                    self.last_chain_seconds = time.monotonic() - self._chain_started
        except Exception as err:  # a model error: this chain is lost, the lanes go on
            log.warning("reasoning lane failed: %s: %s", type(err).__name__, err)
            failed, self._reasoning = self._reasoning, None
            if failed is not None:  # not again on the same inputs
                self._reasoned_t0 = max(self._reasoned_t0, failed[0].t0)
        finally:
            took = time.monotonic() - started
            self.times.add("reasoning_step", took)
            with self._cond:
                if self._stale_step:
                    self._slice_left -= took
                    self._stale_step = False
                self._busy = False
                self._cond.notify_all()

    # -- questions ----------------------------------------------------------------------
    def question_budget(self) -> float | None:
        """Seconds a question step may take now without pushing a plan that arrives during it
        past max_plan_age: max_plan_age less a plan's expected time (None: no plan has run
        yet, so nothing to protect but the timeout)."""
        plan = self.times.estimate("plan")
        if plan is None:
            return None
        return self.planner.settings.max_plan_age - plan

    def _question_step(self, job: QuestionJob) -> None:
        """One step of the question when it fits the plans' deadline; else wait a little
        (a plan may come) or, past the job's timeout, refuse it with the reason."""
        budget = self.question_budget()
        step = self.times.estimate(job.next_step, default=self.times.estimate("plan", 0.0))
        waited = time.monotonic() - job.submitted
        try:
            if waited > job.timeout:
                self._refuse(
                    job,
                    f"no GPU time within {job.timeout:g} s: plans take "
                    f"{1000 * (self.times.estimate('plan') or 0):.0f} ms of max_plan_age "
                    f"{1000 * self.planner.settings.max_plan_age:.0f} ms, a question "
                    f"{job.next_step} step {1000 * (step or 0):.0f} ms",
                )
                return
            if budget is not None and step is not None and step > budget:
                with self._cond:  # idle until a plan arrives or a little time passes
                    self._busy = False
                    self._cond.notify_all()
                    self._cond.wait_for(lambda: self._pending or self._stop, timeout=0.05)
                return
            self._advance(job)
        finally:
            with self._cond:
                self._busy = False
                self._cond.notify_all()

    def _advance(self, job: QuestionJob) -> None:
        policy = self.planner.policy
        kind, started = job.next_step, time.monotonic()
        try:
            if job.steps is None:
                job.steps = policy.ask_steps(  # type: ignore[union-attr]
                    job.request, max_tokens=job.max_tokens
                )
            job.next_step = next(job.steps)
            job.next_step = "token"
        except StopIteration as done:
            self._finish(job, done.value, "")
            return
        except Exception as err:  # a bad question or a model error: refused, never fatal
            log.warning("question failed: %s: %s", type(err).__name__, err)
            self._refuse(job, f"{type(err).__name__}: {err}")
            return
        finally:
            self.times.add(kind, time.monotonic() - started)

    def _refuse(self, job: QuestionJob, why: str) -> None:
        self.questions_refused += 1
        self._finish(job, None, why)

    def _finish(self, job: QuestionJob, answer: Answer | None, why: str) -> None:
        with self._cond:
            if self._question is job:
                self._question = None
        if job.steps is not None:
            job.steps.close()
        if answer is not None:
            self.questions_answered += 1
        try:
            job.on_answer(answer, why)
        except Exception:
            log.exception("planning worker: handing on an answer failed")
