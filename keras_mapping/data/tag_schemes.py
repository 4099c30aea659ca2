"""Entity tag schemes (IOB1, IOB2 a.k.a. BIO, IOBES a.k.a. BIOES) and conversions to IOB2.

A tag is "O" (outside any entity) or a prefix and an entity type joined by "-", e.g. "B-PER".
IOB2 starts every entity with B- and continues it with I-. IOB1 starts an entity with I- and
uses B- only to separate two adjacent entities of the same type. IOBES marks the end of an
entity with E- and a one-word entity with S-. Everything inside the library works on IOB2;
`to_iob2` reads the other schemes and `from_iob2` writes IOBES back out.

An I- tag that does not continue an entity of its type (after "O", at the start of a sentence,
or after another type) is not valid IOB2. conlleval, the CoNLL shared task's scorer, reads it
as the start of a new entity; `to_iob2(..., repair=True)` does the same.
"""

SCHEMES = {"iob1": "iob1", "iob2": "iob2", "bio": "iob2", "iobes": "iobes", "bioes": "iobes"}

# The prefixes a scheme may use besides "O".
_PREFIXES = {"iob1": "BI", "iob2": "BI", "iobes": "BIES"}


class TagError(ValueError):
    """A tag that is malformed or not allowed where it stands, with its location."""


def scheme_name(scheme):
    """The canonical name ("iob1", "iob2" or "iobes") of a scheme name, any case.

    Example:
    >>> scheme_name("BIO"), scheme_name("BIOES")
    ('iob2', 'iobes')
    """
    key = scheme.lower() if isinstance(scheme, str) else scheme
    if key not in SCHEMES:
        raise ValueError(f"unknown tag scheme {scheme!r}; expected one of "
                         f"{', '.join(SCHEMES)} (any case)")
    return SCHEMES[key]


def _prefix(where):
    return f"{where}: " if where else ""


def parse_tag(tag, where=None):
    """Splits a tag into its prefix ("B", "I", "E", "S" or "O") and entity type.

    Args:
        tag: e.g. "B-PER" or "O". The type is everything after the first "-".
        where: location for the error message, e.g. "train.txt:17".

    Returns:
        `(prefix, type)`; `("O", None)` for "O".

    Raises:
        TagError: not a string, or neither "O" nor a prefix, "-" and a non-empty type.

    Example:
    >>> parse_tag("B-PER"), parse_tag("O"), parse_tag("I-ORG-SUB")
    (('B', 'PER'), ('O', None), ('I', 'ORG-SUB'))
    """
    if not isinstance(tag, str):
        raise TagError(f"{_prefix(where)}a tag must be a string, found "
                       f"{type(tag).__name__} {tag!r}")
    if tag == "O":
        return "O", None
    prefix, dash, entity_type = tag.partition("-")
    if prefix in ("B", "I", "E", "S") and dash and entity_type and not entity_type.isspace():
        return prefix, entity_type
    raise TagError(f"{_prefix(where)}malformed tag {tag!r}: expected 'O' or one of the "
                   "prefixes B-, I-, E-, S- followed by an entity type, e.g. 'B-PER'")


def _location(where, index):
    """Where tag `index` of a sentence stands: `where[index]`, or `where` and the token."""
    if isinstance(where, (list, tuple)):
        return where[index]
    return f"{where}, token {index + 1}" if where else f"token {index + 1}"


def _parse_in_scheme(tags, scheme, where):
    parsed = []
    for index, tag in enumerate(tags):
        prefix, entity_type = parse_tag(tag, _location(where, index))
        if prefix != "O" and prefix not in _PREFIXES[scheme]:
            raise TagError(f"{_location(where, index)}: tag {tag!r} is not allowed in the "
                           f"{scheme.upper()} scheme, whose prefixes are "
                           f"{', '.join(p + '-' for p in _PREFIXES[scheme])} (and 'O')")
        parsed.append((prefix, entity_type))
    return parsed


def _continues(previous, entity_type):
    """Whether an I- (or E-) tag of `entity_type` may follow the tag `previous`."""
    return previous[0] in ("B", "I") and previous[1] == entity_type


def _previous_name(tags, index):
    return repr(tags[index - 1]) if index else "the sentence start"


def _check_iobes(tags, parsed, where):
    """Every entity opened by B- or I- goes on with I- or ends with E- of the same type."""
    outside = ("O", None)
    for index, current in enumerate([*parsed, outside]):
        previous = parsed[index - 1] if index else outside
        opened = previous[0] in ("B", "I")
        if current[0] in ("I", "E") and not _continues(previous, current[1]):
            raise TagError(f"{_location(where, index)}: tag {tags[index]!r} after "
                           f"{_previous_name(tags, index)} does not continue an entity of type "
                           f"{current[1]} (pass repair=True to start one there)")
        if opened and current[0] not in ("I", "E"):
            found = repr(tags[index]) if index < len(tags) else "the sentence end"
            raise TagError(f"{_location(where, index - 1)}: entity {tags[index - 1]!r} is not "
                           f"closed: IOBES ends it with E-{previous[1]}, found {found} next "
                           "(pass repair=True to end it there)")


def to_iob2(tags, scheme, repair=True, where=None):
    """Normalises the tags of one sentence to IOB2.

    IOB1: an I- tag starts an entity unless it follows a tag of the same type; B- always
    starts one. IOBES: S- becomes B- and E- becomes I-. An I- tag (E- in IOBES) that does not
    continue an entity of its type is invalid in IOB2 and IOBES: `repair=True` makes it B-, as
    conlleval reads it; `repair=False` raises. With `repair=False`, an IOBES entity that is not
    closed by E- raises too. (IOB1 has no invalid sequence: I- after "O" is how it starts one.)

    Args:
        tags: the sentence's tags, e.g. `["B-PER", "I-PER", "O"]`.
        scheme: "iob1", "iob2" (or "bio"), "iobes" (or "bioes"); any case.
        repair: read an I- tag that continues no entity as B-, instead of raising.
        where: location for error messages: one string for the sentence (e.g. "train.txt:17";
            messages add the token number), or a list of one location per tag.

    Returns:
        list of IOB2 tags, as long as `tags`.

    Raises:
        TagError: a malformed tag, a prefix the scheme does not use (e.g. S- in IOB2), or,
            with `repair=False`, an invalid sequence; the message names the location, the tag
            and the tag before it.

    Example:
    >>> to_iob2(["I-PER", "I-PER", "B-PER", "I-LOC"], "iob1")
    ['B-PER', 'I-PER', 'B-PER', 'B-LOC']
    >>> to_iob2(["S-LOC", "O", "B-PER", "E-PER"], "IOBES")
    ['B-LOC', 'O', 'B-PER', 'I-PER']
    >>> to_iob2(["O", "I-PER"], "iob2", repair=False, where="train.txt:17")
    Traceback (most recent call last):
    ...
    keras_mapping.data.tag_schemes.TagError: train.txt:17, token 2: tag 'I-PER' after 'O' ...
    """
    scheme = scheme_name(scheme)
    parsed = _parse_in_scheme(tags, scheme, where)
    if scheme == "iobes" and not repair:
        _check_iobes(tags, parsed, where)
    converted, previous = [], ("O", None)
    for index, (prefix, entity_type) in enumerate(parsed):
        prefix = {"S": "B", "E": "I"}.get(prefix, prefix)
        if prefix == "I" and not _continues(previous, entity_type):
            if scheme == "iob2" and not repair:
                raise TagError(f"{_location(where, index)}: tag {tags[index]!r} after "
                               f"{_previous_name(tags, index)} does not continue an entity of "
                               f"type {entity_type}; IOB2 starts every entity with B- (pass "
                               f"repair=True to read it as 'B-{entity_type}', as conlleval does)")
            prefix = "B"
        previous = (prefix, entity_type)
        converted.append("O" if prefix == "O" else f"{prefix}-{entity_type}")
    return converted


def from_iob2(tags, scheme):
    """Writes one sentence's IOB2 tags in the IOB2 or IOBES scheme.

    The tags are first read as `to_iob2(tags, "iob2")` reads them, so an I- tag that continues
    no entity (as a model may predict) starts one.

    Args:
        tags: IOB2 tags of one sentence.
        scheme: "iob2" (or "bio") or "iobes" (or "bioes"); any case.

    Returns:
        list of tags in `scheme`.

    Example:
    >>> from_iob2(["B-LOC", "O", "B-PER", "I-PER", "I-PER"], "iobes")
    ['S-LOC', 'O', 'B-PER', 'I-PER', 'E-PER']
    """
    scheme = scheme_name(scheme)
    if scheme not in ("iob2", "iobes"):
        raise ValueError(f"cannot write tags in the {scheme.upper()} scheme; "
                         "expected 'iob2' or 'iobes'")
    tags = to_iob2(tags, "iob2")
    if scheme == "iob2":
        return tags
    written = []
    for index, tag in enumerate(tags):
        if tag == "O":
            written.append(tag)
            continue
        prefix, entity_type = parse_tag(tag)
        following = tags[index + 1] if index + 1 < len(tags) else "O"
        if following != f"I-{entity_type}":  # the entity's last word
            prefix = {"B": "S", "I": "E"}[prefix]
        written.append(f"{prefix}-{entity_type}")
    return written


def entity_spans(iob2_tags):
    """The entities of one sentence's IOB2 tags as `(type, start, end)`, end exclusive.

    These are conlleval's chunks: an entity starts at B-, or at an I- tag that does not
    continue an entity of its type, and goes on over the I- tags of its type that follow.

    Example:
    >>> entity_spans(["B-PER", "I-PER", "O", "B-LOC", "B-LOC", "I-ORG"])
    [('PER', 0, 2), ('LOC', 3, 4), ('LOC', 4, 5), ('ORG', 5, 6)]
    """
    spans = []
    for index, tag in enumerate(to_iob2(iob2_tags, "iob2")):
        if tag.startswith("B-"):
            spans.append([tag[2:], index, index + 1])
        elif tag.startswith("I-"):
            spans[-1][2] = index + 1  # repaired IOB2: an I- tag always continues spans[-1]
    return [tuple(span) for span in spans]
