"""The ask conversation as a pure state machine (frontend/conversation.py): bytes in,
answers out, bytes to write back; no descriptor, no clock. Property tests: however the
frontend's bytes are split into reads, the same answers come out; no line longer than
the limit is ever taken; a confused frontend is given up on after MAX_ROUNDS."""

from __future__ import annotations

import select

import pytest
from fakes import FakeClock
from hypothesis import given
from hypothesis import strategies as st

from systrace.frontend.conversation import AWAITING, DECIDING, IDLE, NEED_DATA, Conversation
from systrace.frontend.errors import FrontendGone, NoAnswer, ProtocolError
from systrace.frontend.protocol import Answer, parse_answer
from systrace.frontend.waiting import Waiter

ANSWERS = ["permit", "deny", "deny[ENOENT]", "permit-now", "deny-now[EACCES]", "kill", "detach", "review",
           "templates", "template 2", 'filename eq "/x" then permit', "bogus", ""]


def answers_of(conversation: Conversation, chunks: list[bytes]) -> list[Answer]:
    """Feed the chunks; reject every answer (so the next is awaited) until the data runs out."""
    got: list[Answer] = []
    pending = list(chunks)
    while True:
        event = conversation.next_event()
        if event is NEED_DATA:
            if not pending:
                return got
            conversation.receive_data(pending.pop(0))
            continue
        assert isinstance(event, Answer)
        got.append(event)
        conversation.reject([])


@given(st.lists(st.sampled_from(ANSWERS), min_size=1, max_size=8), st.data())
def test_any_split_of_the_frontends_bytes_gives_the_same_answers(lines: list[str], data) -> None:
    stream = "".join(f"{line}\r\n" if n % 2 else f"{line}\n" for n, line in enumerate(lines)).encode()
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=10)))
    chunks = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True) if b > a]
    conversation = Conversation(max_rounds=100)
    conversation.question("q")
    assert answers_of(conversation, chunks) == [parse_answer(line) for line in lines]


@given(st.integers(0, 200), st.integers(1, 64))
def test_no_line_longer_than_the_limit_is_taken(length: int, chunk: int) -> None:
    limit = 100
    conversation = Conversation(max_line=limit)
    conversation.question("q")
    stream = b"x" * length + b"\n"
    chunks = [stream[i:i + chunk] for i in range(0, len(stream), chunk)]
    if length > limit:
        with pytest.raises(ProtocolError):
            answers_of(conversation, chunks)
    else:
        assert [answer.kind for answer in answers_of(conversation, chunks)] == ["invalid"]


def test_the_exchange_writes_the_originals_lines() -> None:
    conversation = Conversation(prompt=b"Answer: ")
    assert conversation.question("prog: q") == b"prog: q\nAnswer: "
    assert conversation.state == AWAITING and conversation.next_event() is NEED_DATA
    conversation.receive_data(b"review\n")
    assert conversation.next_event() == Answer("review") and conversation.state == DECIDING
    assert conversation.reject(["rule 1", "rule 2"]) == b"rule 1\nrule 2\nWRONG\nAnswer: "
    conversation.receive_data(b"permit\n")
    assert conversation.next_event() == Answer("permit")
    assert conversation.accept() == b"OKAY\n" and conversation.state == IDLE


def test_an_ask_rules_prompt_takes_only_permit_or_deny() -> None:
    conversation = Conversation()
    conversation.question("q", prompt_only=True)
    conversation.receive_data(b"kill\n")
    assert conversation.next_event().kind == "invalid"  # type: ignore[union-attr]


def test_a_confused_frontend_is_given_up_after_max_rounds() -> None:
    conversation = Conversation(max_rounds=3)
    conversation.question("q")
    conversation.receive_data(b"bogus\n" * 10)
    for _ in range(2):
        conversation.next_event()
        conversation.reject(["Syntax error."])
    conversation.next_event()
    with pytest.raises(FrontendGone, match="too many answers"):
        conversation.reject(["Syntax error."])


def test_end_of_input_is_the_frontend_gone_and_a_reset_starts_afresh() -> None:
    conversation = Conversation(eof_message="EOF on policy input request")
    conversation.question("q")
    conversation.receive_data(b"perm")
    conversation.receive_data(b"")
    with pytest.raises(FrontendGone, match="EOF on policy input request"):
        conversation.next_event()
    conversation.reset()
    conversation.question("q")
    assert conversation.next_event() is NEED_DATA


def test_out_of_order_use_is_refused() -> None:
    conversation = Conversation()
    with pytest.raises(RuntimeError):
        conversation.accept()
    conversation.question("q")
    with pytest.raises(RuntimeError):
        conversation.question("another")


def test_what_the_frontend_wrote_ahead_waits_for_the_next_question() -> None:
    conversation = Conversation()
    conversation.question("q1")
    conversation.receive_data(b"permit\ndeny\n")
    assert conversation.next_event() == Answer("permit")
    conversation.accept()
    conversation.question("q2")
    assert conversation.next_event() == Answer("deny")


def test_a_waiter_past_its_deadline_on_the_injected_clock_gives_up_at_once() -> None:
    import os

    read, write = os.pipe()
    try:
        clock = FakeClock()
        with pytest.raises(NoAnswer):
            Waiter(clock).wait(read, select.POLLIN, clock() - 0.001)  # never readable: only the clock ends it
    finally:
        os.close(read)
        os.close(write)
