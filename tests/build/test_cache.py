import subprocess
import sys

import numpy as np

from circuitpress.build.cache import Cache, cache_key
from circuitpress.markup.refs import parse_ref
from circuitpress.requests import ExamplesRequest, FeatureVisRequest, Result


def test_round_trip_and_hit_miss(tmp_path):
    cache = Cache(tmp_path)
    req = FeatureVisRequest(parse_ref("m/conv1:3"))
    key = cache_key(req, ["modelfp", "datafp"])
    assert cache.get(key) is None and cache.misses == 1
    arr = np.arange(12, dtype=np.float32).reshape(1, 2, 2, 3)
    cache.put(key, Result(data={"activation": [1.5]}, arrays={"images": arr}))
    got = cache.get(key)
    assert got is not None and cache.hits == 1
    assert got.data == {"activation": [1.5]}
    np.testing.assert_array_equal(got.arrays["images"], arr)
    assert not list(tmp_path.rglob(".tmp-*")), "no temporary files left behind"


def test_key_depends_on_everything():
    a = FeatureVisRequest(parse_ref("m/conv1:3"))
    b = FeatureVisRequest(parse_ref("m/conv1:3"), steps=128)
    base = cache_key(a, ["x", "y"])
    assert base == cache_key(FeatureVisRequest(parse_ref("m/conv1:3")), ["x", "y"])
    assert base != cache_key(b, ["x", "y"])
    assert base != cache_key(a, ["x2", "y"])
    assert base != cache_key(ExamplesRequest(parse_ref("m/conv1:3")), ["x", "y"])


def test_corrupt_entry_is_a_miss_with_warning(tmp_path):
    cache = Cache(tmp_path)
    key = "ab" + "0" * 62
    cache.put(key, Result(data={"v": 1}))
    cache.path_of(key).write_bytes(b"not a zip file at all")
    assert cache.get(key) is None
    assert len(cache.warnings) == 1 and "corrupt cache entry" in cache.warnings[0].message
    cache.put(key, Result(data={"v": 2}))  # recomputed entry replaces it
    assert cache.get(key).data == {"v": 2}


def test_pickled_arrays_are_refused(tmp_path):
    cache = Cache(tmp_path)
    key = "cd" + "1" * 62
    path = cache.path_of(key)
    path.parent.mkdir(parents=True)
    np.savez(
        path, __meta__=np.frombuffer(b"{}", dtype=np.uint8), evil=np.array([object()], dtype=object)
    )
    assert cache.get(key) is None  # allow_pickle=False: a miss, never an unpickle
    assert cache.warnings


def test_cache_module_does_not_import_torch():
    code = (
        "import circuitpress.build.cache, circuitpress.build.pipeline, circuitpress.build.plan,"
        " sys; print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_the_code_version_hashes_the_analysis_sources(tmp_path, monkeypatch) -> None:
    """Moving the cache module once made the version hash an empty folder: every analysis
    change would then have been served stale results from the cache."""
    import shutil

    from circuitpress.build import cache

    sources = sorted(cache.ANALYSIS_SOURCE.rglob("*.py"))
    assert len(sources) > 10 and any(p.name == "featurevis.py" for p in sources)
    copy = tmp_path / "analysis"
    shutil.copytree(cache.ANALYSIS_SOURCE, copy)
    shutil.copy(cache.ANALYSIS_SOURCE.parent / "requests.py", tmp_path / "requests.py")
    monkeypatch.setattr(cache, "ANALYSIS_SOURCE", copy)
    before = cache.analysis_code_version.__wrapped__()
    (copy / "methods" / "featurevis.py").write_text("# changed\n")
    assert cache.analysis_code_version.__wrapped__() != before
    train = copy / "models" / "zoo" / "train.py"
    train_before = cache.analysis_code_version.__wrapped__()
    train.write_text(train.read_text() + "\n# the training script does not change results\n")
    assert cache.analysis_code_version.__wrapped__() == train_before
    (tmp_path / "requests.py").write_text("STIMULI = ()\n")  # the vocabulary analysis parses
    assert cache.analysis_code_version.__wrapped__() != train_before
