"""Results keyed by grouping factor, found by mixedjax's name of the factor or by lme4's.

mixedjax names a nest's inner terms as MixedModels.jl does, outer factor first: ``(1 | a/b)`` has the terms ``a``
and ``a:b`` (levels ``A1:B1``). lme4 names the same terms ``a`` and ``b:a`` (``c:(b:a)`` for the third level of
``a/b/c``). A user coming from lme4 may type either spelling; the keys (what ``list(m.ranef())`` shows) stay
mixedjax's.
"""

from __future__ import annotations


def lme4_aliases(design) -> dict[str, str]:
    """lme4's name of each random-effects term's grouping factor -> mixedjax's, where they differ."""
    return {rt.label: rt.group_name for rt in design.formula.random if rt.label and rt.label != rt.group_name}


class ByGroup(dict):
    """A dict keyed by mixedjax's group names whose lookups (``d[k]``, ``k in d``, ``d.get(k)``) also accept lme4's
    name of the same grouping factor (``aliases``: lme4's name -> mixedjax's)."""

    def __init__(self, items, aliases: dict[str, str]):
        super().__init__(items)
        self.aliases = dict(aliases)

    def resolve(self, key):
        """mixedjax's name for ``key`` (itself when it is a key or no alias)."""
        if dict.__contains__(self, key):
            return key
        return self.aliases.get(key, key) if isinstance(key, str) else key

    def __missing__(self, key):
        name = self.resolve(key)
        if name is key or not dict.__contains__(self, name):
            raise KeyError(key)
        return dict.__getitem__(self, name)

    def __contains__(self, key) -> bool:
        return dict.__contains__(self, self.resolve(key))

    def get(self, key, default=None):
        return self[key] if key in self else default
