import torch

from alpamayo_ros.model.sampling import draw, token_distribution


def test_the_nucleus_keeps_the_most_likely_tokens_up_to_top_p():
    """Probabilities 0.5, 0.3, 0.15, 0.05 at temperature 1: top_p 0.7 keeps the first two
    (0.5 < 0.7 <= 0.8), top_p 0.9 the first three; the kept mass is not renormalised here
    (multinomial takes unnormalised weights)."""
    p = torch.tensor([[0.15, 0.5, 0.05, 0.3]])
    logits = p.log()
    kept = token_distribution(logits, 1.0, 0.7)
    torch.testing.assert_close(kept, torch.tensor([[0.0, 0.5, 0.0, 0.3]]))
    kept = token_distribution(logits, 1.0, 0.9)
    torch.testing.assert_close(kept, torch.tensor([[0.15, 0.5, 0.0, 0.3]]))
    full = token_distribution(logits, 1.0, 1.0)
    torch.testing.assert_close(full, p)
    sharper = token_distribution(logits, 0.5, 1.0)  # temperature 0.5: p^2, renormalised
    torch.testing.assert_close(sharper, p**2 / (p**2).sum())


def test_greedy_ids_pass_through_the_draw_and_draws_follow_the_seed():
    logits = torch.tensor([[0.1, 2.0, -1.0], [3.0, 0.0, 0.0]])
    ids = token_distribution(logits, 0.0, 0.9)
    assert ids.tolist() == [1, 0] and draw(ids, torch.Generator()) is ids
    probs = token_distribution(torch.zeros((4, 1000)), 1.0, 1.0)
    a = draw(probs, torch.Generator().manual_seed(3))
    b = draw(probs, torch.Generator().manual_seed(3))
    c = draw(probs, torch.Generator().manual_seed(4))
    assert a.tolist() == b.tolist() and a.tolist() != c.tolist()
    never = torch.tensor([[0.0, 1.0, 0.0]])  # a filtered token is never drawn
    gen = torch.Generator().manual_seed(0)
    assert all(int(draw(never, gen)[0]) == 1 for _ in range(50))
