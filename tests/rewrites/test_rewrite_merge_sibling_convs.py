from xflow.graphs.builders import make_inception_like, make_sibling_convs
from xflow.rewrites import get_rule

from .toy import assert_negative, assert_positive, count_ops, model, node, w

MERGE = get_rule("merge_sibling_convs")
SPLIT = get_rule("split_conv")


def test_merge_sibling_convs_with_shared_relu():
    m = make_sibling_convs()  # two 3x3 convs (mergeable) + one 1x1
    (new,) = assert_positive(MERGE, m, 1)
    assert count_ops(new, "Conv") == 2 and count_ops(new, "Split") == 1
    assert count_ops(new, "Relu") == 2  # one shared Relu for the merged pair + the 1x1 branch


def test_merge_sibling_convs_inception_three_way():
    (new,) = assert_positive(MERGE, make_inception_like(), 1)
    assert count_ops(new, "Conv") == 4


def test_merge_sibling_convs_rejects_different_kernels():
    m = make_sibling_convs(kernels=(3, 1), out_channels=(4, 4))
    assert_negative(MERGE, m, "differ in kernel")


def test_merge_sibling_convs_rejects_grouped():
    m = model([node("Conv", ["x", "w1"], ["a"], group=2, kernel_shape=[1, 1]),
               node("Conv", ["x", "w2"], ["b"], group=2, kernel_shape=[1, 1])],
              {"x": (1, 4, 5, 5)}, ["a", "b"], {"w1": w(4, 2, 1, 1), "w2": w(4, 2, 1, 1)})
    assert_negative(MERGE, m, "grouped convs")


def test_split_conv_round_trip():
    (merged,) = assert_positive(MERGE, make_sibling_convs(relu=False), 1)
    (back,) = assert_positive(SPLIT, merged, 1)
    assert count_ops(back, "Conv") == 3 and count_ops(back, "Split") == 0


def test_split_conv_rejects_other_axis():
    m = model([node("Conv", ["x", "w1"], ["c"], kernel_shape=[1, 1]),
               node("Split", ["c"], ["a", "b"], axis=2, num_outputs=2)],
              {"x": (1, 4, 6, 6)}, ["a", "b"], {"w1": w(4, 4, 1, 1)}, opset=18)
    assert_negative(SPLIT, m, "not the channel axis")
