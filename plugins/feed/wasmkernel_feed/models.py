"""The feed's typed models: what clients send and what they get back."""

from __future__ import annotations

import re

import attrs

#: Not only blanks.
_VISIBLE = attrs.validators.matches_re(r"\S", func=re.search)


@attrs.frozen
class NewText:
    """A post or a comment: 1 or more characters, not only blanks."""

    text: str = attrs.field(validator=attrs.validators.and_(attrs.validators.min_len(1), _VISIBLE))


def new_text(max_text: int) -> type[NewText]:
    """`NewText` of at most `max_text` characters (the plugin's config)."""
    cls = attrs.make_class(
        "NewText",
        {"text": attrs.field(type=str, validator=attrs.validators.and_(attrs.validators.min_len(1), attrs.validators.max_len(max_text), _VISIBLE))},
        bases=(NewText,),
        frozen=True,
        slots=True,
    )
    cls.__doc__ = f"A post or a comment: 1 to {max_text} characters, not only blanks."
    return cls


@attrs.frozen
class Comment:
    """A comment on a post."""

    id: int
    post_id: int
    text: str
    author: str
    created_at: float


@attrs.frozen
class Post:
    """A post."""

    id: int
    text: str
    author: str
    created_at: float


@attrs.frozen
class Thread(Post):
    """A post with its comments, oldest first."""

    comments: list[Comment] = attrs.Factory(list)


@attrs.frozen
class Posts:
    """The newest posts, newest first."""

    posts: list[Thread]
