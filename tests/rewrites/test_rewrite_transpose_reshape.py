import numpy as np

from xflow.graphs.builders import make_transpose_chain
from xflow.rewrites import get_rule

from .toy import assert_negative, assert_positive, count_ops, model, node

FT = get_rule("fuse_transposes")
IT = get_rule("remove_identity_transpose")
FR = get_rule("fuse_reshapes")
IR = get_rule("remove_identity_reshape")


def test_fuse_transposes_cancel_to_nothing():
    (new,) = assert_positive(FT, make_transpose_chain(), 1)
    assert count_ops(new, "Transpose") == 0


def test_fuse_transposes_compose():
    m = make_transpose_chain(perms=((0, 2, 1, 3), (0, 1, 3, 2)))
    (new,) = assert_positive(FT, m, 1)
    assert count_ops(new, "Transpose") == 1


def test_identity_transpose():
    m = model([node("Transpose", ["x"], ["t"], perm=[0, 1, 2]), node("Relu", ["t"], ["y"])], {"x": (2, 3, 4)}, ["y"])
    (new,) = assert_positive(IT, m, 1)
    assert count_ops(new, "Transpose") == 0
    assert_negative(IT, make_transpose_chain(), "not the identity")


def test_fuse_reshapes_and_identity_reshape():
    m = model([node("Reshape", ["x", "s1"], ["r1"]), node("Reshape", ["r1", "s2"], ["r2"]),
               node("Reshape", ["r2", "s3"], ["y"])],
              {"x": (2, 3, 4)}, ["y"],
              {"s1": np.array([6, 4], np.int64), "s2": np.array([2, 0, -1], np.int64),
               "s3": np.array([2, 12], np.int64)})
    assert_positive(FR, m, 2)
    same = model([node("Reshape", ["x", "s"], ["y"])], {"x": (2, 3)}, ["y"], {"s": np.array([2, 3], np.int64)})
    (new,) = assert_positive(IR, same, 1)
    assert count_ops(new, "Reshape") == 0


def test_fuse_reshapes_rejects_dynamic_shape_operand():
    m = model([node("Reshape", ["x", "s1"], ["r1"]), node("Shape", ["x"], ["sx"]),
               node("Reshape", ["r1", "sx"], ["y"])], {"x": (2, 3)}, ["y"], {"s1": np.array([6], np.int64)})
    assert_negative(FR, m, "not constant")
    assert_negative(IR, model([node("Reshape", ["x", "s"], ["y"])], {"x": (2, 3)}, ["y"],
                              {"s": np.array([3, 2], np.int64)}), "shape changes")


def test_rewrite_keeps_tensors_read_inside_subgraphs():
    from onnx import TensorProto, helper

    then_g = helper.make_graph([node("Identity", ["r"], ["o1"])], "then", [],
                               [helper.make_tensor_value_info("o1", TensorProto.FLOAT, [2, 3])])
    else_g = helper.make_graph([node("Neg", ["r"], ["o2"])], "else", [],
                               [helper.make_tensor_value_info("o2", TensorProto.FLOAT, [2, 3])])
    m = model([node("Relu", ["x"], ["r"]), node("ReduceSum", ["x"], ["s"], keepdims=0),
               node("Greater", ["s", "zero"], ["cond"]),
               node("If", ["cond"], ["y"], then_branch=then_g, else_branch=else_g),
               node("Transpose", ["x"], ["t1"], perm=[1, 0]), node("Transpose", ["t1"], ["z"], perm=[1, 0])],
              {"x": (2, 3)}, ["y", "z"], {"zero": np.array(0.0, np.float32)})
    (new,) = assert_positive(FT, m, 1)
    assert count_ops(new, "Relu") == 1  # only read inside the If branches, must survive


def test_fuse_transposes_rejects_default_perm_of_unknown_rank():
    from onnx import TensorProto, helper

    g = helper.make_graph([node("Transpose", ["x"], ["t"]), node("Transpose", ["t"], ["y"])], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, None)],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    assert_negative(FT, m, "unknown rank")
