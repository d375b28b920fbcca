from xflow.rewrites import get_rule

from .toy import assert_negative, assert_positive, count_ops, model, node, w

GROUP = get_rule("group_parallel_convs")
UNGROUP = get_rule("ungroup_conv")


def _two_branches(**attrs_b):
    return model([node("Conv", ["a", "wa", "ba"], ["ya"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
                  node("Conv", ["b", "wb"], ["yb"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], **attrs_b)],
                 {"a": (1, 4, 6, 6), "b": (1, 4, 6, 6)}, ["ya", "yb"],
                 {"wa": w(5, 4, 3, 3), "ba": w(5), "wb": w(5, 4, 3, 3)})


def test_group_parallel_convs():
    (new,) = assert_positive(GROUP, _two_branches(), 1)
    conv = [n for n in new.graph.node if n.op_type == "Conv"]
    assert len(conv) == 1 and [a.i for a in conv[0].attribute if a.name == "group"] == [2]


def test_group_rejects_dependent_convs():
    m = model([node("Conv", ["a", "wa"], ["ya"], kernel_shape=[1, 1]),
               node("Conv", ["ya", "wb"], ["yb"], kernel_shape=[1, 1])],
              {"a": (1, 4, 6, 6)}, ["yb"], {"wa": w(4, 4, 1, 1), "wb": w(4, 4, 1, 1)})
    assert_negative(GROUP, m, "would create a cycle")


def test_ungroup_round_trip():
    (grouped,) = assert_positive(GROUP, _two_branches(), 1)
    (back,) = assert_positive(UNGROUP, grouped, 1)
    assert count_ops(back, "Conv") == 2


def test_ungroup_rejects_depthwise():
    m = model([node("Conv", ["a", "wa"], ["y"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], group=16)],
              {"a": (1, 16, 6, 6)}, ["y"], {"wa": w(16, 1, 3, 3)})
    assert_negative(UNGROUP, m, "depthwise")
