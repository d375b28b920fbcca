"""``merge_group_convs``: a grouped conv with half the groups and zero-padded weights, outputs kept."""
from __future__ import annotations

import numpy as np
import onnx
from onnx import numpy_helper

from xflow.rewrites import get_rule
from xflow.rewrites._merge_group_convs import merged_group_weight

from .toy import assert_negative, assert_positive, model, node, w

MERGE = get_rule("merge_group_convs")


def _grouped(group: int, cin: int = 8, cout: int = 8, bias: bool = True, **attrs):
    inits = {"wg": w(cout, cin // group, 3, 3, scale=1.0)}
    if bias:
        inits["bg"] = w(cout)
    attrs = {"pads": [1, 1, 1, 1], **attrs}
    return model([node("Conv", ["x", "wg", "bg"] if bias else ["x", "wg"], ["y"], kernel_shape=[3, 3],
                       group=group, **attrs),
                  node("Relu", ["y"], ["z"])],
                 {"x": (1, cin, 6, 6)}, ["z"], inits)


def _conv(m: onnx.ModelProto):
    (conv,) = [n for n in m.graph.node if n.op_type == "Conv"]
    group = next(a.i for a in conv.attribute if a.name == "group")
    weight = next(numpy_helper.to_array(i) for i in m.graph.initializer if i.name == conv.input[1])
    return group, weight


def test_merge_halves_the_groups_and_keeps_the_outputs():
    """``assert_positive`` runs ORT on both graphs with random inputs (``verify_rewrite``): a filter
    in the wrong input block (TASO's placement for G > 2: by the half of all output channels)
    changes the outputs."""
    (new,) = assert_positive(MERGE, _grouped(4), 1)
    group, weight = _conv(new)
    assert group == 2 and weight.shape == (8, 4, 3, 3)
    (again,) = assert_positive(MERGE, new, 1)  # 4 -> 2 -> 1
    assert _conv(again)[0] == 1
    assert MERGE.match(again) == []  # group 1: nothing to merge


def test_merged_weight_places_each_filter_in_its_old_groups_block():
    wt = np.arange(8 * 2 * 1 * 1, dtype=np.float32).reshape(8, 2, 1, 1) + 1  # G = 4: 2 outputs per group
    m = merged_group_weight(wt, 4)[..., 0, 0]
    assert m.shape == (8, 4)
    for o in range(8):
        block = (o // 2) % 2
        np.testing.assert_array_equal(m[o, 2 * block:2 * block + 2], wt[o, :, 0, 0])
        np.testing.assert_array_equal(m[o, 2 * (1 - block):2 * (1 - block) + 2], 0)
    # the mutant "block of the half of all outputs" (TASO's kernel) differs for output 2 (old group 1)
    assert m[2, 2:].tolist() == wt[2, :, 0, 0].tolist() and m[2, :2].tolist() == [0, 0]


def test_merge_with_strides_no_bias_and_depthwise():
    assert_positive(MERGE, _grouped(8, bias=False, strides=[2, 2]), 1)  # depthwise: 8 groups of 1
    assert_positive(MERGE, _grouped(2, cout=4, dilations=[2, 2], pads=[2, 2, 2, 2]), 1)


def test_merge_refuses_odd_groups_and_ungrouped_convs():
    assert_negative(MERGE, _grouped(3, cin=6, cout=6), "odd")
    assert MERGE.match(_grouped(1)) == [] and MERGE.explain(_grouped(1)) == []
