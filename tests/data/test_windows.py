import numpy as np
import pytest

from keras_mapping.data.windows import window_owners, window_spans


@pytest.mark.parametrize("length,capacity,stride", [(1, 4, 2), (4, 4, 2), (5, 4, 2), (17, 6, 4),
                                                    (30, 8, 8), (9, 3, 1)])
def test_windows_cover_every_position_and_each_is_owned_once(length, capacity, stride):
    spans = window_spans(length, capacity, stride)
    assert spans[0][0] == 0 and spans[-1][1] == length
    assert all(end - start <= capacity for start, end in spans)
    owners = window_owners(length, spans)
    for position, owner in enumerate(owners):
        start, end = spans[owner]
        assert start <= position < end
    # Owners never go backwards, so each window predicts one contiguous run.
    assert (np.diff(owners) >= 0).all()


def test_owner_gives_the_most_context():
    # Position 5 is 2 from the edges of (3, 8) and 1 from those of (0, 6): the second wins.
    assert window_owners(8, [(0, 6), (3, 8)])[5] == 1


@pytest.mark.parametrize("capacity,stride,match", [(0, 1, "capacity"), (4, 0, "stride"),
                                                   (4, 5, "stride")])
def test_bad_window_arguments_are_named(capacity, stride, match):
    with pytest.raises(ValueError, match=match):
        window_spans(10, capacity, stride)
