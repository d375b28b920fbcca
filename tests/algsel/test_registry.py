"""The one algorithm registry behind the conv, linear and pooling families."""
import copy

import pytest

from xflow.algsel import algorithms, linear, pool
from xflow.errors import UnknownName

FAMILIES = [
    (algorithms, "get_algorithm", "list_algorithms", "register_algorithm", "winograd", "winograd_2x2"),
    (linear, "get_linear_algorithm", "list_linear_algorithms", "register_linear_algorithm", "onednn", "mkldnn_packed"),
    (pool, "get_pool_algorithm", "list_pool_algorithms", "register_pool_algorithm", "direct", "shift"),
]


@pytest.mark.parametrize("module,get,names,register,alias,target", FAMILIES, ids=["conv", "linear", "pool"])
def test_lookup_aliases_instances_and_registration(module, get, names, register, alias, target, monkeypatch):
    monkeypatch.setattr(module, "_FAMILY", copy.copy(module._FAMILY))  # registration is module state
    module._FAMILY.entries = dict(module._FAMILY.entries)
    get, names, register = getattr(module, get), getattr(module, names), getattr(module, register)
    assert names()[0] == "default"
    assert get(alias).name == target and get(alias.upper()).name == target
    algo = get("default")
    assert get(algo) is algo  # an instance passes through
    with pytest.raises(UnknownName, match=r"choose one of default, .*aliases: .*→"):
        get("no-such-algorithm")
    with pytest.raises(ValueError, match="already registered"):
        register(algo)
    clone = copy.copy(algo)
    clone.name = "default_copy"
    register(clone)
    assert get("default_copy") is clone and names()[-1] == "default_copy"
    register(clone, replace=True)
