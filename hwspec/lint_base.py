"""What every lint pass shares: the recorder of group ``spec`` that says where each key was written."""

from __future__ import annotations

from dlverify.hwspec import compat
from dlverify.hwspec.model import Spec
from dlverify.results import Check, Recorder

GROUP = "spec"


class LintOut(Recorder):
    """Results of group ``spec``; every one carries ``key at file:line`` in its detail."""

    def __init__(self, spec: Spec) -> None:
        super().__init__(GROUP)
        self.spec = spec

    def at(self, id_: str, name: str, key: str) -> Check:
        return self.check(id_, name, where=f"{key} at {self.spec.where(key)}")

    def unknown(self, id_: str, name: str, key: str, what: str, table: str, observed: str | None) -> None:
        self.at(id_, name, key).warn(
            observed, None, f"{what} not in compatibility data as of {compat.as_of(table)}: can't judge"
        )


def fmt_cuda_list(cudas: tuple[str, ...]) -> str:
    return ", ".join(compat.cuda_tag(c) for c in cudas)
