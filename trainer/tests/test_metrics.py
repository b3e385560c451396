import json
import os
import pathlib

import numpy as np
import pytest
import torch

from cvopt_trainer.metrics import ImageBoxes, evaluate, non_max_suppression, topk_accuracy

REPO = pathlib.Path(__file__).resolve().parents[2]
FIXTURE = REPO / "contracts" / "map-fixture.json"


def data_dir():
    d = pathlib.Path(os.environ.get("CVOPT_TEST_DATA") or REPO.parent / "shared" / "data")
    return d if d.is_dir() else None


def boxes(rows, key="box"):
    return np.array([r[key] for r in rows], float).reshape(-1, 4)


def fixture_images(fx):
    return [ImageBoxes(boxes(im["gts"]), np.array([g["classId"] for g in im["gts"]], np.int64), None,
                       boxes(im["predictions"]), np.array([p["score"] for p in im["predictions"]], float),
                       np.array([p["classId"] for p in im["predictions"]], np.int64)) for im in fx["images"]]


def test_shared_map_fixture():
    fx = json.loads(FIXTURE.read_text())
    r = evaluate(fixture_images(fx), list(range(len(fx["classes"]))))
    exp = fx["expected"]
    assert r["map50"] == pytest.approx(exp["map50"], abs=1e-9)
    assert r["map5095"] == pytest.approx(exp["map5095"], abs=1e-9)
    assert [r["ap50_per_class"][c] for c in range(3)] == pytest.approx(exp["ap50PerClass"], abs=1e-9)
    # Hand check of class 1: TP, TP, FP, FP against 3 GTs -> precision 1 up to recall 2/3 -> 67 of 101 points.
    assert exp["ap50PerClass"][1] == pytest.approx(67 / 101, abs=1e-12)


def test_perfect_and_empty_predictions():
    gt = boxes([{"box": [0, 0, 10, 10]}, {"box": [20, 20, 40, 50]}])
    cls = np.array([0, 1])
    perfect = evaluate([ImageBoxes(gt, cls, None, gt, np.array([0.9, 0.8]), cls)])
    assert perfect["map50"] == pytest.approx(1) and perfect["map5095"] == pytest.approx(1)
    assert perfect["precision"] == pytest.approx(1) and perfect["recall"] == pytest.approx(1)
    none = evaluate([ImageBoxes(gt, cls)])
    assert none["map50"] == 0 and none["map5095"] == 0


def test_crowd_gt_absorbs_detections_without_counting():
    gt = boxes([{"box": [0, 0, 10, 10]}, {"box": [50, 50, 150, 150]}])
    dets = boxes([{"box": [0, 0, 10, 10]}, {"box": [60, 60, 80, 80]}, {"box": [100, 100, 120, 120]}])
    im = ImageBoxes(gt, np.array([0, 0]), np.array([False, True]), dets, np.array([0.5, 0.9, 0.8]), np.zeros(3, np.int64))
    # Both high-scoring detections lie inside the crowd region: ignored, not false positives.
    assert evaluate([im])["map50"] == pytest.approx(1.0)


def test_max_dets_is_per_image_and_class():
    gt = boxes([{"box": [0, 0, 10, 10]}])
    dets = np.array([[100 + i, 100, 110 + i, 110] for i in range(3)] + [[0, 0, 10, 10]], float)
    im = ImageBoxes(gt, np.array([0]), None, dets, np.array([0.9, 0.8, 0.7, 0.1]), np.zeros(4, np.int64))
    assert evaluate([im], max_dets=3)["map50"] == 0
    assert evaluate([im], max_dets=4)["map50"] == pytest.approx(0.25, abs=0.01)


@pytest.mark.skipif(data_dir() is None, reason="/work/shared/data absent (set CVOPT_TEST_DATA): pycocotools parity not checked")
def test_matches_pycocotools_on_the_reference_fixture():
    d = data_dir() / "cocoeval"
    gt = json.loads((d / "instances_val2014_100.json").read_text())
    dt = json.loads((d / "instances_val2014_fakebbox100_results.json").read_text())
    xyxy = lambda b: [b[0], b[1], b[0] + b[2], b[1] + b[3]]  # noqa: E731
    per = {im["id"]: ([], [], [], [], [], []) for im in gt["images"]}
    for a in gt["annotations"]:
        g = per[a["image_id"]]
        g[0].append(xyxy(a["bbox"]))
        g[1].append(a["category_id"])
        g[2].append(bool(a.get("iscrowd", 0)))
    for a in dt:
        g = per[a["image_id"]]
        g[3].append(xyxy(a["bbox"]))
        g[4].append(a["score"])
        g[5].append(a["category_id"])
    images = [ImageBoxes(np.array(g[0]).reshape(-1, 4), np.array(g[1], np.int64), np.array(g[2], bool),
                         np.array(g[3]).reshape(-1, 4), np.array(g[4]), np.array(g[5], np.int64))
              for _, g in sorted(per.items())]
    r = evaluate(images, sorted(c["id"] for c in gt["categories"]))
    assert r["map5095"] == pytest.approx(0.5045806987, abs=1e-4)
    assert r["map50"] == pytest.approx(0.6969727247, abs=1e-4)
    assert r["map75"] == pytest.approx(0.5729816670, abs=1e-4)


def test_nms_keeps_the_best_box_per_class():
    # [B, 4+nc, N]: two overlapping boxes of class 0, one overlapping box of class 1, one below conf.
    cols = [[50, 50, 20, 20, 0.9, 0.0], [51, 50, 20, 20, 0.8, 0.0], [50, 50, 20, 20, 0.0, 0.7], [10, 10, 4, 4, 0.0005, 0]]
    pred = torch.tensor(cols, dtype=torch.float).T.unsqueeze(0)
    (out,) = non_max_suppression(pred, conf=0.001, iou=0.7)
    assert out.shape == (2, 6)
    assert out[:, 4].tolist() == pytest.approx([0.9, 0.7])
    assert out[0, :4].tolist() == pytest.approx([40, 40, 60, 60])
    assert out[:, 5].tolist() == [0, 1]


def test_topk_accuracy():
    probs = torch.tensor([[0.7, 0.2, 0.1], [0.2, 0.3, 0.5], [0.1, 0.6, 0.3]])
    acc = topk_accuracy(probs, torch.tensor([0, 1, 2]))
    assert acc["top1"] == pytest.approx(1 / 3) and acc["top5"] == 1.0


PROTOCOL_FIXTURE = REPO / "contracts" / "eval-protocol.json"


@pytest.mark.parametrize("mode", ["multiLabel", "singleLabel"])
def test_nms_follows_the_shared_evaluation_protocol(mode):
    # The same raw head output and expected detections as the TypeScript decoder's test (contracts/eval-protocol.json).
    from cvopt_trainer.metrics.nms import PROTOCOL
    fx = json.loads(PROTOCOL_FIXTURE.read_text())
    p = fx["protocol"]
    assert (PROTOCOL["conf"], PROTOCOL["iou"], PROTOCOL["max_det"], PROTOCOL["multi_label"]) == (p["conf"], p["iou"], p["maxDetections"], p["multiLabel"])
    pred = torch.tensor(fx["output"]["rows"], dtype=torch.float).unsqueeze(0)
    (out,) = non_max_suppression(pred, conf=p["conf"], iou=p["iou"], max_det=p["maxDetections"], multi_label=mode == "multiLabel")
    want = fx["expected"][mode]
    assert out.shape == (len(want), 6)
    for row, w in zip(out.tolist(), want):
        assert row[:4] == pytest.approx(w["box"], abs=1e-4)
        assert row[4] == pytest.approx(w["score"], abs=1e-6)
        assert int(row[5]) == w["classId"]
