"""Captions of an edit: unknown words, empty captions, the word limit, captions files."""

import pytest

from jaxmani.data.text import END_TOKEN, Vocabulary
from jaxmani.edit import command
from jaxmani.edit.manipulator import encode_caption
from jaxmani.errors import UserError

VOCABULARY = Vocabulary((END_TOKEN, "a", "red", "bird", *(f"w{i}" for i in range(30))))


def test_unknown_words_are_skipped_and_named():
    """Known words keep their ids in order; each unknown word is named once."""
    caption = encode_caption("A red zorbo bird, zorbo qux!", "caption 1", VOCABULARY, 18, 0)
    assert caption.ids[:4].tolist() == [1, 2, 3, 0] and caption.length == 3
    assert caption.words == ("a", "red", "bird")
    assert caption.warnings == ("caption 1: skipped words not in the vocabulary: zorbo, qux",)


@pytest.mark.parametrize("text", ["", "   \t\n"])
def test_empty_caption_is_an_error(text):
    """Empty and whitespace-only captions are refused."""
    with pytest.raises(UserError, match="caption 2 is empty"):
        encode_caption(text, "caption 2", VOCABULARY, 18, 0)


@pytest.mark.parametrize(("text", "named"), [("zorbo qux", "zorbo, qux"), ("!!! ...", None)])
def test_caption_without_a_known_word_is_an_error(text, named):
    """No known word: a one-line error naming the unknown words, if any."""
    with pytest.raises(UserError) as error:
        encode_caption(text, "caption 1", VOCABULARY, 18, 0)
    message = str(error.value)
    assert "has no word the model knows" in message and "\n" not in message
    assert (f"not in the vocabulary: {named}" in message) == (named is not None)


def test_long_caption_keeps_words_num_words_in_order_with_a_warning():
    """30 known words at a limit of 18: 18 distinct ones in their order, the same per seed."""
    text = " ".join(f"w{i}" for i in range(30))
    caption = encode_caption(text, "caption 1", VOCABULARY, 18, seed=3)
    positions = [int(word[1:]) for word in caption.words]
    assert caption.length == 18 and len(positions) == 18
    assert positions == sorted(set(positions)) and positions != list(range(18))
    assert caption.warnings == (
        "caption 1: 30 known words, more than the model's 18; kept 18 at random positions, "
        "in order, as the baseline does",
    )
    assert encode_caption(text, "x", VOCABULARY, 18, seed=3).words == caption.words
    assert encode_caption(text, "x", VOCABULARY, 18, seed=4).words != caption.words


def test_captions_file_that_is_not_utf8_names_the_line(tmp_path):
    """A Latin-1 byte on line 2 is reported with its line."""
    path = tmp_path / "captions.txt"
    path.write_bytes("a.png\ta red bird\nb.png\ta caf\xe9 bird\n".encode("latin-1"))
    with pytest.raises(UserError, match=r"line 2 is not UTF-8 \(byte b'\\xe9'"):
        command.read_lines(str(path))


def test_captions_file_lines_become_jobs_per_image(tmp_path):
    """Lines of one image become one job; blank lines are skipped; names must exist."""
    for name in ("a.png", "b.jpg"):
        (tmp_path / name).write_bytes(b"")
    path = tmp_path / "captions.txt"
    path.write_text("a.png\ta red bird\n\nb.jpg\ta bird\na.png\ta blue bird\n", encoding="utf-8")
    jobs = command.folder_jobs(str(tmp_path), str(path), "out")
    assert [job.texts for job in jobs] == [["a red bird", "a blue bird"], ["a bird"]]
    assert [job.outputs for job in jobs] == [["out/a_0.png", "out/a_1.png"], ["out/b_0.png"]]
    assert jobs[0].labels == [f"{path}:1", f"{path}:4"]
    path.write_text("a.png\ta bird\nc.png\ta bird\n", encoding="utf-8")
    with pytest.raises(UserError, match=r"captions.txt:2: .*c.png does not exist"):
        command.folder_jobs(str(tmp_path), str(path), "out")
    path.write_text("a.png a bird without a tab\n", encoding="utf-8")
    with pytest.raises(UserError, match="expected '<image file name><tab><caption>'"):
        command.folder_jobs(str(tmp_path), str(path), "out")
