"""xflow.parallel.labels: every benchmark variant gets a readable name and a colour family."""
from __future__ import annotations

import re

import pytest

from xflow.parallel import bench
from xflow.parallel.labels import FAMILIES, variant_family, variant_label

# the names the benchmark measures (its module docstring lists them) plus the A/A control's suffix
NAMES = ["gen_serial", "gen_serial_torchscript", "gen_serial_plain", "gen_serial_tuned", "gen_intra",
         "gen_branch_threads", "gen_branch_torchscript", "gen_branch_regions_threads", "gen_hybrid_threads",
         "gen_hybrid_torchscript", "gen_verified_threads", "gen_serial_graph", "gen_branch_torchscript_graph",
         "gen_hybrid_torchscript_graph", "eager_1t", "eager_2t", "ort_seq_1t", "ort_seq_2t",
         "ort_1t", "ort_2t", "ort_parallel", "ort_clusters", "gen_serial~aa"]


def test_every_documented_variant_is_covered():
    documented = set(re.findall(r"``(gen_\w+|eager_\w+|ort_\w+)``", bench.__doc__ or ""))
    documented = {d for d in documented if "<" not in d and not d.endswith("_")}
    assert documented and documented <= set(NAMES) | {"eager_1t", "ort_seq_1t"}, sorted(documented - set(NAMES))


@pytest.mark.parametrize("name", NAMES)
def test_labels_are_readable_and_families_known(name):
    label = variant_label(name, workers=3)
    assert label != name and "_" not in label
    assert variant_family(name) in FAMILIES


def test_labels_say_what_runs():
    assert variant_label("gen_branch_threads", 4) == "generated branches on 4 workers"
    assert variant_label("gen_hybrid_torchscript") == "generated hybrid (branches or threads), torchscript"
    assert variant_label("ort_seq_1t") == "ORT sequential, 1 thread" == variant_label("ort_1t")
    assert variant_label("eager_2t") == "torch eager, 2 threads"
    assert variant_label("gen_serial~aa") == "A/A control: the reference timed twice"
    assert variant_family("gen_serial~aa") == "A/A control" and variant_family("ort_parallel") == "ONNX Runtime"
    assert variant_family("eager_1t") == "torch eager" and variant_family("gen_intra") == "generated"
    assert variant_label("something_new") == "something_new"           # unknown names pass through
