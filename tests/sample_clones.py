"""The sample-clone helper of the tests (its home: the test plug-in package, shared with the benches)."""

from s2l2a_testplugins.samples import SAMPLE, clone_sample, sample_name

__all__ = ["SAMPLE", "clone_sample", "sample_name"]
