"""Per-user conversation history, bounded by messages, characters and users. Pure."""

from __future__ import annotations

from collections import OrderedDict, deque

from rosey.protocol import Turn


class History:
    """``max_messages`` counts messages: a user turn and a bot turn are two."""

    def __init__(self, max_messages: int, max_chars: int = 6000, max_users: int = 2000):
        self.max_messages = max_messages
        self.max_chars = max_chars
        self._max_users = max_users
        self._turns: OrderedDict[str, deque[Turn]] = OrderedDict()

    def turns(self, user: str) -> list[Turn]:
        """The newest turns that fit the character budget, oldest first."""
        kept: list[Turn] = []
        used = 0
        for turn in reversed(self._turns.get(user.lower(), ())):
            used += len(turn.content)
            if used > self.max_chars:
                break
            kept.append(turn)
        kept.reverse()
        return kept

    def append(self, user: str, role: str, content: str) -> None:
        if self.max_messages <= 0:
            return
        key = user.lower()
        turns = self._turns.get(key)
        if turns is None:
            turns = self._turns[key] = deque(maxlen=self.max_messages)
        self._turns.move_to_end(key)
        turns.append(Turn(role, content))  # type: ignore[arg-type]
        while len(self._turns) > self._max_users:
            self._turns.popitem(last=False)

    def forget(self, user: str) -> None:
        self._turns.pop(user.lower(), None)
