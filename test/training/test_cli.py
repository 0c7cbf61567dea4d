"""The training command line: build-dataset, train-sft, evaluate."""

import json

from alpamayo_ros.cli import main
from alpamayo_ros.model.tiny import build_tokenizer, make_tiny_checkpoint


def test_build_train_evaluate(drives, tmp_path, capsys):
    notes = tmp_path / "coc.jsonl"
    notes.write_text("".join((d / "coc_annotations.jsonl").read_text() for d in drives))
    data = tmp_path / "data"
    assert main(["build-dataset", *map(str, drives), "--annotations", str(notes),
                 "--out", str(data)]) == 0  # fmt: skip
    assert "samples in" in capsys.readouterr().out
    ckpt = make_tiny_checkpoint(tmp_path / "init")
    args = ["train-sft", str(ckpt), str(data), "--out", str(tmp_path / "sft"), "--steps", "2",
            "--batch-size", "2", "--workers", "0", "--warmup", "0", "--log-every", "1"]  # fmt: skip
    assert main(args) == 0
    log = [json.loads(line) for line in (tmp_path / "sft" / "train_log.jsonl").open()]
    assert [r["step"] for r in log] == [1, 2]
    out = tmp_path / "metrics.json"
    args = ["evaluate", str(tmp_path / "sft"), str(data), "--stride", "8", "--out", str(out)]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "constant velocity" in printed and "consistency" in printed
    assert json.loads(out.read_text())["samples"] >= 2


def test_tokenizer_learns_merges_from_a_corpus_and_still_encodes_anything():
    plain = build_tokenizer()
    text = "Stop: a pedestrian is crossing the road ahead."
    merged = build_tokenizer(corpus=[text] * 5, merges=64)
    assert len(merged(text)["input_ids"]) < len(plain(text)["input_ids"]) / 3
    other = "Zebra!? 42"
    assert merged.decode(merged(other)["input_ids"]) == other
    # the trajectory tokens and specials keep their relative layout
    start = merged.convert_tokens_to_ids("<i0>")
    assert merged.convert_tokens_to_ids("<i3999>") == start + 3999


def test_evaluate_skips_a_damaged_sample_and_reports_it(dataset, tmp_path, capsys):
    """A sample with a frame that is no JPEG stopped the evaluation; now it is skipped,
    named, and listed in the report."""
    from test_sft import _damage_a_sample

    data = tmp_path / "data"
    key = _damage_a_sample(dataset, data)
    out = tmp_path / "metrics.json"
    ckpt = make_tiny_checkpoint(tmp_path / "init")
    assert main(["evaluate", str(ckpt), str(data), "--stride", "6", "--out", str(out)]) == 0
    printed = capsys.readouterr()
    assert "held-out samples (1 damaged parts of the dataset skipped)" in printed.out
    report = json.loads(out.read_text())
    assert report["damaged_parts"] == [
        f"{data / 'shard-000000.tar'}: sample {key} is malformed (ValueError: image 6 is not a "
        "readable JPEG)"
    ]
