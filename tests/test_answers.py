"""Kept answers (web/answers.py): made once however many ask at once."""

import asyncio

import pytest

from audioserver.errors import NotFound
from audioserver.web.answers import Answers, InfoAnswer


class Maker:
    """make() for Answers.answer, counting its calls; each waits for `go`."""

    def __init__(self, fail: bool = False):
        self.calls, self.go, self.fail = 0, asyncio.Event(), fail

    async def __call__(self) -> InfoAnswer:
        self.calls += 1
        await self.go.wait()
        if self.fail:
            raise NotFound("there is no audio called 'a.wav'")
        return InfoAnswer(b"{}", '"tag"')


async def test_an_answer_asked_by_many_at_once_is_made_once_and_kept():
    answers, make = Answers(), Maker()
    asking = [asyncio.create_task(answers.answer(1, "a", make)) for _ in range(20)]
    await asyncio.sleep(0.01)
    make.go.set()
    assert {await task for task in asking} == {InfoAnswer(b"{}", '"tag"')}
    assert make.calls == 1
    assert answers.get(1, "a") == InfoAnswer(b"{}", '"tag"')
    again = Maker()
    again.go.set()
    await answers.answer(2, "a", again)
    assert again.calls == 1  # the library moved on: made again


async def test_the_first_asker_going_away_leaves_the_answer_to_the_others():
    answers, make = Answers(), Maker()
    first = asyncio.create_task(answers.answer(1, "a", make))
    await asyncio.sleep(0.01)
    second = asyncio.create_task(answers.answer(1, "a", make))
    await asyncio.sleep(0.01)
    first.cancel()
    make.go.set()
    assert (await second).etag == '"tag"'
    assert make.calls == 1
    with pytest.raises(asyncio.CancelledError):
        await first


async def test_a_failure_reaches_everyone_asking_and_is_not_kept():
    answers, make = Answers(), Maker(fail=True)
    asking = [asyncio.create_task(answers.answer(1, "a", make)) for _ in range(3)]
    await asyncio.sleep(0.01)
    make.go.set()
    for task in asking:
        with pytest.raises(NotFound):
            await task
    assert make.calls == 1
    assert answers.get(1, "a") is None
