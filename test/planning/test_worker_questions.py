"""Questions about the scene share the planning worker without delaying plans past their
deadline: one step at a time while no plan waits, refused with the reason when there is no
time, one question at a time."""

import threading
import time

import numpy as np
from worker_inputs import RIG, inputs

from alpamayo_ros.core.trajectory import integrate
from alpamayo_ros.planning.planner import Planner
from alpamayo_ros.planning.requests import Answer, PlanResult, PolicySample, QuestionRequest
from alpamayo_ros.planning.settings import PlannerSettings
from alpamayo_ros.planning.worker import PlanningWorker

QUESTION = QuestionRequest((np.zeros((8, 8, 3), np.uint8),), "What is ahead?")


class StepPolicy:
    """plan() takes plan_s; ask_steps yields after a prefill of step_s and after each of
    `tokens` tokens of step_s; every event is logged in order."""

    model_id = "steps"

    def __init__(self, plan_s=0.0, step_s=0.0, tokens=5, fail: Exception | None = None):
        self.plan_s, self.step_s, self.tokens, self.fail = plan_s, step_s, tokens, fail
        self.log: list[str] = []
        self.token_started = threading.Event()

    def plan(self, requests, num_samples=1, **_):
        self.log.append("plan")
        time.sleep(self.plan_s)
        roll = integrate(np.zeros((64, 2)), 1.0)
        xyz, rot = roll.to_xyz_rot()
        smp = PolicySample("Keep speed.", np.zeros((64, 2)), roll, xyz, rot, True)
        return PlanResult([[smp] * num_samples for _ in requests], {"total": 1.0})

    def ask_steps(self, request, max_tokens=256, **_):
        if self.fail is not None:
            raise self.fail
        time.sleep(self.step_s)
        self.log.append("prefill")
        yield "prefill"
        for k in range(min(self.tokens, max_tokens)):
            self.token_started.set()
            time.sleep(self.step_s)
            self.log.append(f"token{k}")
            yield "token"
        return Answer(f"{request.question} -> clear road", complete=self.tokens <= max_tokens)


class Answers:
    def __init__(self) -> None:
        self.got: list[tuple[Answer | None, str]] = []
        self.done = threading.Event()

    def __call__(self, answer, why):
        self.got.append((answer, why))
        self.done.set()


def test_a_question_is_answered_between_plans_a_step_at_a_time():
    policy = StepPolicy(step_s=0.02, tokens=6)
    worker = PlanningWorker(Planner(policy, RIG), lambda o: None)
    answers = Answers()
    assert worker.ask(QUESTION, answers)
    assert policy.token_started.wait(5.0)
    worker.submit(inputs(10.0))  # arrives mid-answer: runs before the next token
    assert answers.done.wait(5.0)
    worker.stop()
    answer, why = answers.got[0]
    assert why == "" and answer.text == "What is ahead? -> clear road" and answer.complete
    at = policy.log.index("plan")
    assert 1 < at < len(policy.log) - 1  # between two answer tokens, not after the answer
    assert worker.questions_answered == 1


def test_a_plan_waits_at_most_one_question_step():
    policy = StepPolicy(step_s=0.05, tokens=20)
    worker = PlanningWorker(Planner(policy, RIG), lambda o: None)
    answers = Answers()
    worker.ask(QUESTION, answers)
    assert policy.token_started.wait(5.0)
    steps_before = len(policy.log)  # a token step is running now
    worker.submit(inputs(10.0))
    assert answers.done.wait(10.0)
    worker.stop()
    # The plan ran right after the step that was running when it arrived.
    assert policy.log.index("plan") <= steps_before + 1


def test_no_question_step_when_it_would_push_a_plan_past_its_deadline():
    """Plans take 0.3 s of max_plan_age 0.35 s: a 0.1 s question step does not fit, so the
    question waits, then is refused with the reason; planning is untouched."""
    policy = StepPolicy(plan_s=0.3, step_s=0.1)
    settings = PlannerSettings(max_plan_age=0.35)
    worker = PlanningWorker(Planner(policy, RIG, settings), lambda o: None)
    worker.submit(inputs(10.0))
    assert worker.wait_idle()
    policy.log.clear()
    answers = Answers()
    worker.ask(QUESTION, answers, timeout=0.3)
    assert answers.done.wait(5.0)
    worker.stop()
    answer, why = answers.got[0]
    assert answer is None and "no GPU time within 0.3 s" in why and "max_plan_age 350 ms" in why
    assert "prefill" not in policy.log and worker.questions_refused == 1


def test_one_question_at_a_time_and_failures_are_refusals():
    policy = StepPolicy(step_s=0.05, tokens=10)
    worker = PlanningWorker(Planner(policy, RIG), lambda o: None)
    first, second = Answers(), Answers()
    assert worker.ask(QUESTION, first)
    assert not worker.ask(QUESTION, second)
    assert second.got == [(None, "another question is being answered; ask again when it is done")]
    assert first.done.wait(5.0) and first.got[0][0] is not None
    worker.stop()

    failing = PlanningWorker(
        Planner(StepPolicy(fail=ValueError("questions need an Alpamayo 1.5 checkpoint")), RIG),
        lambda o: None,
    )
    third = Answers()
    failing.ask(QUESTION, third)
    assert third.done.wait(5.0)
    failing.stop()
    assert third.got[0] == (None, "ValueError: questions need an Alpamayo 1.5 checkpoint")


def test_a_model_without_questions_and_a_stopping_worker_refuse():
    class PlanOnly:
        model_id = "plan-only"

        def plan(self, requests, **_):
            raise AssertionError("not called")

    answers = Answers()
    worker = PlanningWorker(Planner(PlanOnly(), RIG), lambda o: None)
    assert not worker.ask(QUESTION, answers)
    worker.stop()
    assert answers.got == [(None, "the model cannot answer questions")]

    slow = StepPolicy(step_s=0.05, tokens=100)
    worker = PlanningWorker(Planner(slow, RIG), lambda o: None)
    pending = Answers()
    worker.ask(QUESTION, pending)
    assert slow.token_started.wait(5.0)
    worker.stop()
    assert pending.done.wait(5.0) and pending.got[0] == (None, "the planner is shutting down")
