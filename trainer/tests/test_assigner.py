import torch

from cvopt_trainer.loss import TaskAlignedAssigner


def grid(n=8, stride=8.0):
    """Anchor centres of an n×n grid, in pixels."""
    ys, xs = torch.meshgrid(torch.arange(n) + 0.5, torch.arange(n) + 0.5, indexing="ij")
    return torch.stack((xs, ys), -1).view(-1, 2) * stride


def boxes_around(points, half=6.0):
    return torch.cat((points - half, points + half), -1)


def run(assigner, gt_boxes, gt_labels, scores=None, pred=None, nc=2):
    anc = grid()
    a = anc.shape[0]
    scores = scores if scores is not None else torch.full((1, a, nc), 0.5)
    pred = pred if pred is not None else boxes_around(anc).unsqueeze(0)
    gt_b = torch.tensor(gt_boxes, dtype=torch.float).view(1, -1, 4)
    gt_l = torch.tensor(gt_labels, dtype=torch.float).view(1, -1, 1)
    mask = (gt_b.sum(-1, keepdim=True) > 0).float()
    return assigner(scores, pred, anc, gt_l, gt_b, mask)


def test_only_anchors_inside_the_gt_become_positive():
    # GT covers cells (1..2, 1..2): anchor centres 12 and 20 in x and y; topk larger than the candidates.
    labels, tboxes, tscores, fg, idx = run(TaskAlignedAssigner(topk=10, num_classes=2), [[8, 8, 24, 24]], [1])
    fg = fg.view(8, 8)
    assert fg.sum() == 4
    assert fg[1:3, 1:3].all()
    assert (labels.view(8, 8)[fg] == 1).all() and (labels.view(8, 8)[~fg] == 2).all()
    assert torch.allclose(tboxes[0, fg.view(-1)], torch.tensor([8.0, 8, 24, 24]))
    assert (tscores[0, ~fg.view(-1)] == 0).all() and (tscores[0, fg.view(-1), 0] == 0).all()


def test_topk_keeps_the_best_aligned_anchors():
    anc = grid()
    scores = torch.full((1, 64, 2), 0.1)
    best = [0 * 8 + 0, 1 * 8 + 1]  # two anchors with a high class score and a box equal to the GT
    pred = boxes_around(anc).unsqueeze(0).clone()
    for i in best:
        scores[0, i, 0] = 0.9
        pred[0, i] = torch.tensor([0.0, 0, 32, 32])
    _, _, tscores, fg, _ = run(TaskAlignedAssigner(topk=2, num_classes=2), [[0, 0, 32, 32]], [0], scores, pred)
    assert fg[0].nonzero().view(-1).tolist() == best
    # Normalised: the best positive's target equals its IoU with the GT (1 here).
    assert torch.isclose(tscores[0, :, 0].max(), torch.tensor(1.0), atol=1e-5)


def test_anchor_claimed_by_two_gts_goes_to_the_higher_overlap():
    anc = grid()
    pred = boxes_around(anc).unsqueeze(0).clone()
    shared = 2 * 8 + 2  # centre (20, 20), inside both GTs
    pred[0, shared] = torch.tensor([14.0, 14, 30, 30])  # matches GT b far better than GT a
    _, tboxes, _, fg, idx = run(TaskAlignedAssigner(topk=10, num_classes=2),
                                [[0, 0, 24, 24], [14, 14, 30, 30]], [0, 1], pred=pred)
    assert fg[0, shared]
    assert idx[0, shared] == 1
    assert torch.allclose(tboxes[0, shared], torch.tensor([14.0, 14, 30, 30]))


def test_padding_gts_and_empty_batches_assign_nothing():
    labels, _, tscores, fg, _ = run(TaskAlignedAssigner(topk=10, num_classes=2), [[0, 0, 0, 0]], [0])
    assert not fg.any() and tscores.sum() == 0 and (labels == 2).all()
    a = TaskAlignedAssigner(num_classes=3)
    out = a(torch.rand(2, 64, 3), torch.rand(2, 64, 4), grid(), torch.zeros(2, 0, 1), torch.zeros(2, 0, 4),
            torch.zeros(2, 0, 1))
    assert not out[3].any() and out[2].shape == (2, 64, 3)
