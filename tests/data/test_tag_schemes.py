"""Tag schemes: IOB1 and IOBES read as IOB2, IOBES written back, malformed and misplaced tags."""

import pytest

from keras_mapping.data.tag_schemes import (TagError, entity_spans, from_iob2, parse_tag,
                                            scheme_name, to_iob2)


def test_parse_tag_splits_prefix_and_type():
    assert parse_tag("O") == ("O", None)
    assert parse_tag("B-PER") == ("B", "PER")
    assert parse_tag("S-LOC") == ("S", "LOC")
    assert parse_tag("I-ORG-SUB") == ("I", "ORG-SUB")  # the type is all after the first "-"


@pytest.mark.parametrize("tag", ["B-", "X-PER", "PER", "b-per", "", "O-PER", "B- "])
def test_malformed_tags_are_named(tag):
    with pytest.raises(TagError, match=rf"train\.txt:3: malformed tag {tag!r}"):
        parse_tag(tag, "train.txt:3")


def test_a_tag_that_is_no_string_is_a_tag_error():
    with pytest.raises(TagError, match="must be a string, found int 1"):
        to_iob2(["O", 1], "iob2")


def test_scheme_names_and_aliases_in_any_case():
    assert [scheme_name(name) for name in ("IOB1", "bio", "Iob2", "BIOES", "iobes")] == [
        "iob1", "iob2", "iob2", "iobes", "iobes"]
    with pytest.raises(ValueError, match="unknown tag scheme 'bilou'"):
        to_iob2(["O"], "bilou")


def test_iob1_starts_entities_with_i_and_separates_same_type_neighbours_with_b():
    assert to_iob2(["I-PER", "I-PER", "B-PER"], "iob1") == ["B-PER", "I-PER", "B-PER"]
    # I-LOC right after I-PER is a new entity of another type.
    assert to_iob2(["I-PER", "I-LOC", "O", "I-MISC", "I-MISC"], "iob1") == [
        "B-PER", "B-LOC", "O", "B-MISC", "I-MISC"]
    # IOB1 has no invalid sequence, so strict reading changes nothing.
    assert to_iob2(["O", "I-ORG"], "iob1", repair=False) == ["O", "B-ORG"]


def test_valid_iob2_is_unchanged():
    tags = ["B-PER", "I-PER", "B-PER", "O", "B-LOC", "B-ORG", "I-ORG"]
    assert to_iob2(tags, "iob2", repair=False) == tags
    assert to_iob2(tuple(tags), "BIO") == tags


def test_iobes_reads_as_iob2_and_round_trips():
    iobes = ["S-LOC", "O", "B-PER", "I-PER", "E-PER", "S-PER", "B-ORG", "E-ORG"]
    iob2 = ["B-LOC", "O", "B-PER", "I-PER", "I-PER", "B-PER", "B-ORG", "I-ORG"]
    assert to_iob2(iobes, "iobes", repair=False) == iob2
    assert from_iob2(iob2, "iobes") == iobes
    assert from_iob2(iob2, "bio") == iob2


def test_from_iob2_repairs_first_and_writes_no_iob1():
    assert from_iob2(["O", "I-PER", "I-PER"], "iobes") == ["O", "B-PER", "E-PER"]
    with pytest.raises(ValueError, match="cannot write tags in the IOB1 scheme"):
        from_iob2(["O"], "iob1")


def test_repair_reads_a_stray_i_tag_as_a_start_like_conlleval():
    tags = ["I-PER", "O", "I-LOC", "B-PER", "I-ORG"]
    assert to_iob2(tags, "iob2") == ["B-PER", "O", "B-LOC", "B-PER", "B-ORG"]


@pytest.mark.parametrize("tags, token, tag, previous", [
    (["I-PER"], 1, "I-PER", "the sentence start"),
    (["O", "I-PER"], 2, "I-PER", "'O'"),
    (["B-PER", "I-LOC"], 2, "I-LOC", "'B-PER'"),
])
def test_strict_iob2_names_the_location_tag_and_previous_tag(tags, token, tag, previous):
    with pytest.raises(TagError, match=rf"train\.txt:17, token {token}: tag '{tag}' after "
                                       rf"{previous} does not continue"):
        to_iob2(tags, "iob2", repair=False, where="train.txt:17")


def test_a_location_per_tag_is_used_as_given():
    with pytest.raises(TagError, match=r"^a\.txt:9: tag 'I-LOC' after 'O'"):
        to_iob2(["O", "I-LOC"], "iob2", repair=False, where=["a.txt:8", "a.txt:9"])


@pytest.mark.parametrize("tags, message", [
    (["O", "E-PER"], r"token 2: tag 'E-PER' after 'O' does not continue"),
    (["B-PER", "O"], r"token 1: entity 'B-PER' is not closed: IOBES ends it with E-PER, "
                     r"found 'O'"),
    (["O", "I-PER"], r"token 2: tag 'I-PER' after 'O'"),
    (["B-PER", "I-PER"], r"token 2: entity 'I-PER' is not closed.*the sentence end"),
    (["B-PER", "E-LOC"], r"token 2: tag 'E-LOC' after 'B-PER'"),
])
def test_strict_iobes_rejects_unopened_and_unclosed_entities(tags, message):
    with pytest.raises(TagError, match=message):
        to_iob2(tags, "iobes", repair=False, where="x.txt:4")
    to_iob2(tags, "iobes")  # repair reads them as conlleval does


def test_a_prefix_outside_the_scheme_is_an_error_even_with_repair():
    with pytest.raises(TagError, match=r"f\.txt:2, token 2: tag 'S-PER' is not allowed in the "
                                       r"IOB2 scheme"):
        to_iob2(["O", "S-PER"], "iob2", where="f.txt:2")
    with pytest.raises(TagError, match="not allowed in the IOB1 scheme"):
        to_iob2(["E-PER"], "iob1")


def test_entity_spans_are_conlleval_chunks():
    assert entity_spans([]) == []
    assert entity_spans(["O", "O"]) == []
    assert entity_spans(["B-PER", "I-PER", "O", "B-LOC", "B-LOC", "I-LOC"]) == [
        ("PER", 0, 2), ("LOC", 3, 4), ("LOC", 4, 6)]
    # An I- tag of another type ends the entity and starts its own.
    assert entity_spans(["B-ORG", "I-ORG", "I-MISC"]) == [("ORG", 0, 2), ("MISC", 2, 3)]
