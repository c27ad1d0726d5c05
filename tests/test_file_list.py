"""generate_file_list.py: the original's split, the list format and the clear errors."""
import numpy as np
import pytest

import config
import data
import generate_file_list


def test_179_videos_reproduce_the_original_split():
    train, valid, test = generate_file_list.split_indices(179, 236, 0.15)
    assert (len(train), len(valid), len(test)) == (125, 27, 27)
    assert valid[:5].tolist() == [68, 146, 35, 49, 175]
    assert test[:5].tolist() == [19, 22, 118, 9, 60]


@pytest.mark.parametrize("count, sizes", [(3, (1, 1, 1)), (4, (2, 1, 1)), (20, (14, 3, 3)), (2, (2, 0, 0))])
def test_other_counts_split_about_70_15_15(count, sizes):
    splits = generate_file_list.split_indices(count, 236, 0.15)
    assert tuple(map(len, splits)) == sizes
    assert sorted(np.concatenate(splits).tolist()) == list(range(count))


def smoid_layout(root, names, frames=1):
    for name in names:
        for sub, array in (("train_he", np.zeros((frames, 2, 3, 4), np.uint16)),
                           ("gt_he", np.zeros((frames, 4, 6, 3), np.uint8))):
            (root / sub).mkdir(exist_ok=True)
            np.save(root / sub / f"{name}.npy", array)


def run(root, *extra):
    generate_file_list.main(["--set", f"data.input_dir={root / 'train_he'}", f"data.gt_dir={root / 'gt_he'}",
                             f"data.lists_dir={root}", *extra])


def test_smoid_layout_gets_the_original_lists(tmp_path):
    names = [f"{i:04d}" for i in range(179)]
    smoid_layout(tmp_path, reversed(names))
    run(tmp_path)
    valid = data.read_file_list(tmp_path / "valid_list")
    assert [entry[0] for entry in valid[:3]] == ["0068", "0146", "0035"]
    assert valid[0][1:] == (str(tmp_path / "gt_he" / "0068.npy"), str(tmp_path / "train_he" / "0068.npy"))
    assert len(data.read_file_list(tmp_path / "file_list")) == 125
    assert data.read_file_list(tmp_path / "test_list")[0][0] == "0019"


def test_empty_data_folder_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="train_he and .*gt_he hold no .npy files"):
        run(tmp_path)


def test_unmatched_names_are_listed(tmp_path):
    smoid_layout(tmp_path, ["a", "b", "c"])
    (tmp_path / "gt_he" / "b.npy").rename(tmp_path / "gt_he" / "x.npy")
    with pytest.raises(ValueError, match=r"(?s)b\.npy has no ground truth.*x\.npy has no input"):
        run(tmp_path)


def test_shape_mismatch_names_the_file(tmp_path):
    smoid_layout(tmp_path, ["a", "b", "c"])
    np.save(tmp_path / "gt_he" / "b.npy", np.zeros((1, 4, 4, 3), np.uint8))
    with pytest.raises(ValueError, match=r"gt_he/b\.npy: ground truth must be"):
        run(tmp_path)


def test_synthesize_builds_a_dataset_and_lists(tmp_path, monkeypatch):
    """--synthesize on two of the bundled sources, at a tiny size."""
    import synthesis

    everything = synthesis.default_sources()
    monkeypatch.setattr(synthesis, "default_sources",
                        lambda: [s for s in everything if s[0] in ("bikes_064", "astronaut", "coins")])
    run(tmp_path, "synthesis.frames=3", "synthesis.height=16", "synthesis.width=24", "--synthesize")
    assert not any("bikes" in line for name in generate_file_list.LIST_NAMES for line in (tmp_path / name).read_text().splitlines())
    lists = [data.read_file_list(tmp_path / name) for name in generate_file_list.LIST_NAMES]
    assert sorted(entry[0] for entries in lists for entry in entries) == ["astronaut", "coins"]
    assert [entry[0] for entry in data.read_file_list(tmp_path / "heldout_list")] == ["bikes_064"]  # a held-out source
    clip = data.open_clip(*reversed(lists[0][0][1:]), config.DEFAULTS["data"])
    assert clip.packed_raw.shape == (3, 8, 12, 4) and clip.meta["fps"] == 25.0


def test_a_clip_name_with_a_space_is_refused_before_any_list(tmp_path):
    smoid_layout(tmp_path, ["a", "b c", "d"])
    with pytest.raises(ValueError, match=r"b c\.npy.*must be a plain file name"):
        run(tmp_path)
    assert not (tmp_path / "file_list").exists()


def test_a_customized_clip_whose_name_has_a_space_stops_before_its_list(tmp_path):
    smoid_layout(tmp_path, ["a", "b", "c"])
    (tmp_path / "customized").mkdir()
    np.save(tmp_path / "customized" / "my clip.npy", np.zeros((1, 2, 3, 4), np.uint16))
    with pytest.raises(ValueError, match=r"my clip\.npy.*must be a plain file name"):
        run(tmp_path, "--set", f"data.customized_dir={tmp_path / 'customized'}")
    assert not (tmp_path / "customized_list").exists()


def test_a_killed_runs_temporary_file_is_not_taken_for_a_clip(tmp_path):
    """`.tmpPID.NAME.npy` is what a run killed mid-write leaves: it must not block the lists."""
    smoid_layout(tmp_path, ["a", "b", "c"])
    np.save(tmp_path / "train_he" / ".tmp999999.d.npy", np.zeros((1, 2, 3, 4), np.uint16))
    run(tmp_path)
    names = [entry[0] for name in generate_file_list.LIST_NAMES for entry in data.read_file_list(tmp_path / name)]
    assert sorted(names) == ["a", "b", "c"]


@pytest.mark.parametrize("line, message", [
    ("../../0_data/gt_he/brick g.npy i.npy", "must be a plain file name"),
    (".hidden g.npy i.npy", "must be a plain file name"),
    ("a\\b g.npy i.npy", "must be a plain file name"),
])
def test_a_list_name_that_is_a_path_is_refused(tmp_path, line, message):
    (tmp_path / "list").write_text(line + "\n")
    with pytest.raises(ValueError, match=message):
        data.read_file_list(tmp_path / "list")


def test_a_list_that_names_two_clips_alike_is_refused(tmp_path):
    (tmp_path / "list").write_text("brick g1.npy i1.npy\ncoins g2.npy i2.npy\nbrick g3.npy i3.npy\n")
    with pytest.raises(ValueError, match=r"list:3: clip name 'brick' is already on line 1"):
        data.read_file_list(tmp_path / "list")


def test_lists_of_clips_that_are_gone_are_removed(tmp_path):
    """A list from an earlier run whose clips this run no longer finds would still be read: the
    held-out sources' after data.held_out changed (their clips now train), your own clips' after
    you took them away."""
    smoid_layout(tmp_path, ["a", "b", "c", "bikes_000"])
    (tmp_path / "customized").mkdir()
    np.save(tmp_path / "customized" / "mine.npy", np.zeros((1, 2, 3, 4), np.uint16))
    customized = f"data.customized_dir={tmp_path / 'customized'}"
    run(tmp_path, customized)
    assert [entry[0] for entry in data.read_file_list(tmp_path / "heldout_list")] == ["bikes_000"]
    assert [entry[0] for entry in data.read_file_list(tmp_path / "customized_list")] == ["mine"]
    (tmp_path / "customized" / "mine.npy").unlink()
    run(tmp_path, customized, "data.held_out=[]")
    assert not (tmp_path / "heldout_list").exists() and not (tmp_path / "customized_list").exists()
    listed = [entry[0] for name in generate_file_list.LIST_NAMES for entry in data.read_file_list(tmp_path / name)]
    assert sorted(listed) == ["a", "b", "bikes_000", "c"]
