from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consent.core.inject import HTMLInjector, body_is_injectable

HEAD = b"<!--H-->"
BODY = b"<div id=banner></div>"

PAGE = b"<!DOCTYPE html><html><head><title>t</title></head><body><p>hi</p></BoDy></html>\n"
EXPECTED = (
    b"<!DOCTYPE html><html><head>"
    + HEAD
    + b"<title>t</title></head><body><p>hi</p>"
    + BODY
    + b"</BoDy></html>\n"
)


def run(
    chunks: list[bytes],
    *,
    head: bytes = HEAD,
    body: bytes = BODY,
    window: int = 65536,
    last_to_finish: bool = False,
) -> bytes:
    """Feed ``chunks``; with ``last_to_finish`` the last one goes to ``finish()``."""
    inj = HTMLInjector(body, head=head, window=window)
    last = chunks[-1] if last_to_finish and chunks else b""
    fed = chunks[:-1] if last_to_finish else chunks
    return b"".join([inj.feed(c) for c in fed]) + inj.finish(last)


# -- a reference implementation, written for clarity, not speed ------------------


def ref_head_at(page: bytes, window: int) -> int | None:
    """Offset right after the first <head> start tag ending within the window."""
    low = page[:window].lower()
    i = 0
    while i < len(low):
        if low.startswith(b"<!--", i):
            end = low.find(b"-->", i + 2)
            if end < 0:
                return None
            i = end + 3
        elif low.startswith(b"<head", i) and low[i + 5 : i + 6] in (
            b"\t",
            b"\n",
            b"\x0c",
            b"\r",
            b" ",
            b"/",
            b">",
        ):
            quote = None
            for j in range(i + 5, len(low)):
                ch = low[j : j + 1]
                if quote:
                    if ch == quote:
                        quote = None
                elif ch in (b'"', b"'"):
                    quote = ch
                elif ch == b">":
                    return j + 1
            return None
        else:
            i += 1
    return None


def reference(page: bytes, head: bytes, body: bytes, window: int = 65536) -> bytes:
    h = ref_head_at(page, window)
    c = page.lower().rfind(b"</body>")
    inserts: list[tuple[int, int, bytes]] = []  # (offset, order, snippet)
    if h is not None:
        inserts.append((h, 0, head))
    tail = (head if h is None else b"") + body
    inserts.append((c if c >= 0 else len(page), 1, tail))
    out, last = [], 0
    for at, _, snippet in sorted(inserts):
        out += [page[last:at], snippet]
        last = at
    out.append(page[last:])
    return b"".join(out)


def split(page: bytes, cuts: list[int]) -> list[bytes]:
    bounds = [0, *sorted(cuts), len(page)]
    return [page[a:b] for a, b in itertools.pairwise(bounds)]


# -- HTMLInjector: placement -----------------------------------------------------


def test_one_chunk() -> None:
    assert run([PAGE]) == EXPECTED


def test_whole_body_to_finish() -> None:
    assert HTMLInjector(BODY, head=HEAD).finish(PAGE) == EXPECTED


def test_reference_agrees_with_hand_written_expectation() -> None:
    assert reference(PAGE, HEAD, BODY) == EXPECTED


@pytest.mark.parametrize("cut", range(1, len(PAGE)))
def test_every_split_in_two(cut: int) -> None:
    assert run(split(PAGE, [cut])) == EXPECTED


def test_every_split_of_close_body_in_three() -> None:
    at = PAGE.index(b"</BoDy>")
    for a, b in itertools.combinations(range(at - 1, at + 9), 2):
        assert run(split(PAGE, [a, b])) == EXPECTED, (a, b)


def test_every_split_in_three_byte_by_byte_region() -> None:
    # Single-byte chunks around both tags, the hardest case for carried state.
    assert run([bytes([b]) for b in PAGE]) == EXPECTED


def test_body_snippet_goes_before_the_last_close_body() -> None:
    page = b"<body><script>document.write('</body>')</script><p>x</p></body></html>"
    out = run([page], head=b"")
    assert out == page[: page.rindex(b"</body>")] + BODY + b"</body></html>"


def test_close_body_inside_script_split_across_chunks() -> None:
    page = b"<body><script>s='</body>'</script>" + b"x" * 100 + b"</body>"
    for cut in range(len(page)):
        assert run(split(page, [cut]), head=b"") == page[:-7] + BODY + b"</body>"


@pytest.mark.parametrize("from_end", [7, 8, 300, *range(505, 525), 1000, 2999])
def test_close_body_anywhere_in_a_big_chunk(from_end: int) -> None:
    # Big chunks are searched in their last 512 bytes first, then in the rest.
    page = bytearray(b"x" * 3000)
    page[-from_end : len(page) - from_end + 7] = b"</bODY>"
    c = len(page) - from_end
    expected = page[:c] + HEAD + BODY + page[c:]
    assert run([bytes(page)]) == expected
    assert run([bytes(page)], last_to_finish=True) == expected


def test_no_close_body_appends_both_snippets() -> None:
    page = b"<p>fragment</p>"
    assert run([page]) == page + HEAD + BODY


def test_no_close_body_with_head_appends_body() -> None:
    page = b"<html><head></head><p>x"
    assert run([page]) == b"<html><head>" + HEAD + b"</head><p>x" + BODY


def test_empty_body() -> None:
    assert run([]) == HEAD + BODY
    assert run([b""]) == HEAD + BODY


def test_empty_chunks_are_ignored() -> None:
    inj = HTMLInjector(BODY, head=HEAD)
    parts = []
    for c in [b"", *split(PAGE, [10, 50]), b""]:
        parts.append(inj.feed(c))
        parts.append(inj.feed(b""))
    assert b"".join(parts) + inj.finish() == EXPECTED


def test_finish_takes_a_last_chunk() -> None:
    inj = HTMLInjector(BODY, head=HEAD)
    first = inj.feed(PAGE[:20])
    assert first + inj.finish(PAGE[20:]) == EXPECTED


def test_finish_twice_raises() -> None:
    inj = HTMLInjector(BODY, head=HEAD)
    inj.finish(PAGE)
    with pytest.raises(RuntimeError, match="twice"):
        inj.finish()
    with pytest.raises(RuntimeError, match="after finish"):
        inj.feed(b"x")


def test_added() -> None:
    assert HTMLInjector(BODY, head=HEAD).added == len(HEAD) + len(BODY)
    assert HTMLInjector(BODY).added == len(BODY)


def test_window_must_be_positive() -> None:
    with pytest.raises(ValueError, match="window"):
        HTMLInjector(BODY, window=0)


# -- HTMLInjector: the <head> tag ------------------------------------------------


@pytest.mark.parametrize(
    ("page", "expected"),
    [
        (b"<HEAD lang=en><title>", b"<HEAD lang=en>H<title>"),
        (b"<Head\n  data-x='1'>", b"<Head\n  data-x='1'>H"),
        (b"<head/>x", b"<head/>Hx"),
        (b"<header><head>", b"<header><head>H"),
        (b"<header>x</header>", b"<header>x</header>H"),
        (b"<!-- <head> --><head>", b"<!-- <head> --><head>H"),
        (b"<!--><head>", b"<!--><head>H"),  # "<!-->" is a complete (empty) comment
        (b"<!-- <head>", b"<!-- <head>H"),  # unterminated comment: no head tag
        (b"<head data-x='a>b' data-y=\"c>'d\">", b"<head data-x='a>b' data-y=\"c>'d\">H"),
        (b"<head data-x='a>", b"<head data-x='a>H"),  # unterminated quote
        (b"<head a='x\"y' b=\"p'q\">", b"<head a='x\"y' b=\"p'q\">H"),
        (b"<head b=\"p'q\" a='x\"y'>", b"<head b=\"p'q\" a='x\"y'>H"),
        (b"<head", b"<headH"),
        (b"<head><head>", b"<head>H<head>"),
    ],
)
def test_head_tag(page: bytes, expected: bytes) -> None:
    for cut, last_to_finish in itertools.product(range(len(page) + 1), (False, True)):
        chunks = split(page, [cut])
        assert run(chunks, head=b"H", body=b"", last_to_finish=last_to_finish) == expected, cut


def test_head_split_byte_by_byte() -> None:
    page = b"<html><!-- c --><HEAD lang='en>'><title>x</title></HEAD><body></body>"
    assert run([bytes([b]) for b in page]) == reference(page, HEAD, BODY)


def test_head_outside_the_window_goes_with_body() -> None:
    page = b"x" * 100 + b"<head></head><body></body>"
    expected = b"x" * 100 + b"<head></head><body>" + HEAD + BODY + b"</body>"
    assert run([page], window=100) == expected
    assert run([page], window=100, last_to_finish=True) == expected


def test_head_tag_must_end_within_the_window() -> None:
    page = b"<head lang=en></head><body></body>"
    assert run([page], window=13, body=b"B", head=b"H") == page[:-7] + b"HB</body>"
    assert run([page], window=14, body=b"B", head=b"H") == reference(page, b"H", b"B", 14)


def test_head_found_after_a_close_body_candidate() -> None:
    page = b"</body><head>x"
    assert run([page]) == BODY + b"</body><head>" + HEAD + b"x"
    assert run([page], last_to_finish=True) == BODY + b"</body><head>" + HEAD + b"x"
    assert run([bytes([b]) for b in page]) == BODY + b"</body><head>" + HEAD + b"x"


def test_head_and_body_at_the_same_offset() -> None:
    page = b"<head></body>"
    assert run([page]) == b"<head>" + HEAD + BODY + b"</body>"
    assert run([b"<head></bo", b"dy>"]) == b"<head>" + HEAD + BODY + b"</body>"


# -- HTMLInjector: streaming -----------------------------------------------------


def test_first_bytes_go_out_at_once() -> None:
    inj = HTMLInjector(BODY, head=HEAD)
    assert inj.feed(b"<html>") == b"<html>"
    assert inj.feed(b"<head>") == b"<head>" + HEAD
    assert inj.feed(b"<title>t</title>") == b"<title>t</title>"


def test_only_a_possible_close_body_prefix_is_held() -> None:
    inj = HTMLInjector(BODY)
    assert inj.feed(b"<p>a</p></BO") == b"<p>a</p>"
    assert inj.feed(b"x") == b"</BOx"
    assert inj.feed(b"<") == b""
    assert inj.feed(b"p>") == b"<p>"
    assert inj.finish() == BODY


def test_a_mid_page_chunk_is_passed_uncopied() -> None:
    inj = HTMLInjector(BODY, head=HEAD)
    inj.feed(b"<html><head></head><body>")
    chunk = b"<p>" + b"x" * 5000 + b"</p>\n"
    assert inj.feed(chunk) is chunk


def test_bytes_after_a_candidate_are_held_until_a_later_one() -> None:
    inj = HTMLInjector(BODY)
    assert inj.feed(b"<p>a</body>") == b"<p>a"
    assert inj.feed(b"<p>b") == b""
    assert inj.feed(b"</body></html>") == b"</body><p>b"
    assert inj.finish() == BODY + b"</body></html>"


def test_page_larger_than_the_window_is_not_stalled() -> None:
    window = 64
    inj = HTMLInjector(BODY, head=HEAD, window=window)
    fed = sent = 0
    chunk = b"<p>lorem</body>ipsum</p>\n" * 3
    for _ in range(200):
        out = inj.feed(chunk)
        fed += len(chunk)
        sent += len(out)
        # Never more than the window (plus a partial tag) behind.
        assert fed + len(HEAD) - sent <= window + 6
    rest = inj.finish()
    assert sent + len(rest) == fed + inj.added


def test_candidate_far_back_is_given_up() -> None:
    page = b"<html><head></head><body></body>" + b"y" * 300
    out = run(split(page, [40, 100, 200]), window=64)
    assert out == b"<html><head>" + HEAD + page[12:] + BODY


def test_candidate_followed_by_a_huge_chunk_is_given_up() -> None:
    page = b"</body>" + b"y" * 300
    assert run([page], head=b"", window=64) == page + BODY
    assert run([page], head=b"", window=64, last_to_finish=True) == page + BODY
    assert run([b"a", page], head=b"", window=64) == b"a" + page + BODY


def test_later_candidate_after_a_given_up_one() -> None:
    page = b"a</body>" + b"y" * 300 + b"</body>z"
    out = run(split(page, [20, 200]), head=b"", window=64)
    assert out == page[:-8] + BODY + b"</body>z"


def test_window_smaller_than_a_tag() -> None:
    page = b"<head></head><body></body>"
    out = run([bytes([b]) for b in page], window=3)
    assert len(out) == len(page) + len(HEAD) + len(BODY)
    assert out == page + HEAD + BODY


# -- HTMLInjector: properties ----------------------------------------------------

FRAGMENTS = [
    b"</body>", b"</BODY>", b"</BoDy>", b"</bod", b"y>", b"</", b"<", b">", b"/",
    b"<head>", b"<HEAD lang=en>", b"<head", b"<Head ", b"<header>", b"ead>",
    b"<!--", b"-->", b"--", b"'", b'"', b"<body>", b"<html>", b"x", b"\n", b"\xc3\xa9",
]  # fmt: skip

html_bytes = st.lists(
    st.one_of(st.sampled_from(FRAGMENTS), st.binary(max_size=6)), max_size=40
).map(b"".join)


@st.composite
def chunked(
    draw: st.DrawFn, pages: st.SearchStrategy[bytes] = html_bytes
) -> tuple[bytes, list[bytes]]:
    page = draw(pages)
    cuts = draw(st.lists(st.integers(0, len(page)), max_size=8))
    return page, split(page, cuts)


@given(chunked(), st.booleans())
@settings(max_examples=800)
def test_matches_reference_when_page_fits_the_window(
    case: tuple[bytes, list[bytes]], last_to_finish: bool
) -> None:
    page, chunks = case
    assert run(chunks, last_to_finish=last_to_finish) == reference(page, HEAD, BODY)


# Snippets made of bytes the pages below never contain, so they can be found again.
MARKED_HEAD, MARKED_BODY = b"\x01H\x01", b"\x02B\x02"
unmarked = html_bytes.map(lambda page: page.translate(None, b"\x01\x02"))


@given(chunked(unmarked), st.integers(1, 80), st.booleans())
@settings(max_examples=800)
def test_any_window_inserts_each_snippet_exactly_once(
    case: tuple[bytes, list[bytes]], window: int, last_to_finish: bool
) -> None:
    page, chunks = case
    head, body = MARKED_HEAD, MARKED_BODY
    out = run(chunks, head=head, body=body, window=window, last_to_finish=last_to_finish)
    assert len(out) == len(page) + len(head) + len(body)
    assert out.count(head) == out.count(body) == 1
    assert out.replace(head, b"").replace(body, b"") == page
    b = out.index(body) + len(body)
    assert out[b : b + 7].lower() == b"</body>" or b == len(out)
    if window > len(page):
        assert out == reference(page, head, body, window)


@given(html_bytes, st.integers(1, 80))
@settings(max_examples=500)
def test_finish_with_the_whole_page_equals_feed_then_finish(page: bytes, window: int) -> None:
    assert run([page], window=window, last_to_finish=True) == run([page], window=window)


@given(st.lists(st.binary(max_size=200), max_size=10), st.integers(1, 300))
def test_never_raises_on_arbitrary_bytes(chunks: list[bytes], window: int) -> None:
    for last_to_finish in (False, True):
        out = run(chunks, window=window, last_to_finish=last_to_finish)
        assert len(out) == sum(map(len, chunks)) + len(HEAD) + len(BODY)


# -- body_is_injectable ----------------------------------------------------------


@pytest.mark.parametrize(
    ("first", "expected"),
    [
        (b"<!DOCTYPE html>", True),
        (b"\xef\xbb\xbf<!DOCTYPE html>", True),
        (b"", True),
        (b"\xff\xfe<\x00", False),
        (b"\xfe\xff\x00<", False),
        (b"\xff\xfe\x00\x00<\x00\x00\x00", False),
        (b"\x00\x00\xfe\xff\x00\x00\x00<", False),
    ],
)
def test_body_is_injectable(first: bytes, expected: bool) -> None:
    assert body_is_injectable(first) is expected
