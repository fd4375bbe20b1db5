"""A seeded synthetic preference data set: polite, on-topic French answers preferred to curt ones.

Post-training (chapter 9) needs *pairs* ``(x, y_w, y_l)``: a prompt, a preferred ("won") answer and a
dispreferred ("lost") one, as human labellers produce them for RLHF. No such data exist for this
course, so this module writes them from templates, with a fixed seed, in the word-level style of
:mod:`neuraltext.data.corpus` (lower case, punctuation as separate tokens):

* the prompt is a request ``"pourriez-vous appeler mon père ?"`` built from an *action* (a verb)
  and an *object*;
* the preferred answer is polite **and** about the request: ``"bien sûr , je vais appeler mon père .
  bonne journée ."``;
* the dispreferred answer is either curt (``"non , appelez mon père vous-même ."``, 70 %), or polite
  but about another object (``"avec plaisir , je vais appeler le dentiste . ..."``, 30 %): the
  preference needs both the tone and a look at the prompt.

Because the rule is known, :func:`judge` is an *oracle*: it says whether an answer is good (a polite
opener and the requested object), which lets the chapter score generated answers independently of
any learned reward model. Held-out pairs use (action, object) combinations that never occur in the
training pairs, so a method that only memorised training prompts does not score well on them.

The SFT demonstrations (:attr:`PreferenceData.demonstrations`) are answers to the training prompts
that are polite only half of the time: supervised fine-tuning learns the *format* of an answer from
them (answer the request, then stop), not the preference.

:func:`web_text` writes "web-like" lines for pre-training a base model: a request followed by a curt
reply, sometimes a polite one, often by another request, as in a forum thread. A model pre-trained on
them continues a request the way the web does, which is the lecture's point: a next-token predictor
is not an assistant. :func:`chat_words` lays a prompt (and answer) out in the chapter's chat format
``<user> ... <assistant> ... </s>``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

__all__ = ["PreferencePair", "PreferenceData", "preference_data", "judge", "web_text", "chat_words",
           "CHAT_SPECIALS", "ACTIONS", "OBJECTS", "POLITE_OPENERS"]

#: the two speaker tokens of the chat format (added after the usual special tokens of a Vocab)
CHAT_SPECIALS = ("<user>", "<assistant>")

# (infinitive, imperative "vous" form): the request uses the first, a curt answer the second.
ACTIONS: list[tuple[str, str]] = [
    ("appeler", "appelez"),
    ("prévenir", "prévenez"),
    ("rappeler", "rappelez"),
    ("contacter", "contactez"),
    ("écrire à", "écrivez à"),
    ("aider", "aidez"),
]
OBJECTS: list[str] = [
    "mon père", "ma mère", "mon frère", "ma sœur", "ma grand-mère", "mon grand-père", "mon oncle",
    "ma tante", "le cardiologue", "le dentiste", "le pneumologue", "le pédiatre", "l' infirmière",
    "le pharmacien", "la secrétaire", "mon voisin",
]
POLITE_OPENERS = ["bien sûr", "avec plaisir", "volontiers", "certainement"]
POLITE_CLOSERS = ["bonne journée .", "je m' en occupe tout de suite .", "n' hésitez pas si besoin .",
                  "à votre service ."]
CURT_OPENERS = ["non", "pas maintenant", "débrouillez-vous", "quoi encore"]
CURT_TEMPLATES = ["{imp} {obj} vous-même .", "je n' ai pas le temps de {inf} {obj} .",
                  "{inf} {obj} , ce n' est pas mon travail .", "{imp} {obj} plus tard ."]


@dataclass(frozen=True)
class PreferencePair:
    """One comparison: ``prompt`` x, ``chosen`` y_w (preferred), ``rejected`` y_l; space-separated words."""

    prompt: str
    chosen: str
    rejected: str


@dataclass
class PreferenceData:
    """Training and held-out pairs, SFT demonstrations and the held-out prompts, all as text."""

    train: list[PreferencePair]
    test: list[PreferencePair]
    demonstrations: list[tuple[str, str]]  # (prompt, answer) for supervised fine-tuning
    seed: int = 0
    held_out: list[tuple[str, str]] = field(default_factory=list)  # (infinitive, object) never trained on

    @property
    def train_prompts(self) -> list[str]:
        return sorted({p.prompt for p in self.train})

    @property
    def test_prompts(self) -> list[str]:
        return sorted({p.prompt for p in self.test})

    def texts(self) -> list[str]:
        """Every prompt and answer (to build a vocabulary)."""
        out = [t for p in self.train + self.test for t in (p.prompt, p.chosen, p.rejected)]
        return out + [t for d in self.demonstrations for t in d]

    def __repr__(self) -> str:
        return (f"PreferenceData({len(self.train)} train pairs, {len(self.test)} held-out pairs, "
                f"{len(self.demonstrations)} demonstrations, seed={self.seed})")


def _prompt(inf: str, obj: str) -> str:
    return f"pourriez-vous {inf} {obj} ?"


def _polite(rng: random.Random, inf: str, obj: str) -> str:
    return f"{rng.choice(POLITE_OPENERS)} , je vais {inf} {obj} . {rng.choice(POLITE_CLOSERS)}"


def _curt(rng: random.Random, inf: str, imp: str, obj: str) -> str:
    return f"{rng.choice(CURT_OPENERS)} , " + rng.choice(CURT_TEMPLATES).format(inf=inf, imp=imp, obj=obj)


def judge(prompt: str, answer: str) -> bool:
    """The oracle: a good answer opens politely and names the object of the request."""
    words = prompt.split()
    if len(words) < 4 or words[0] != "pourriez-vous" or words[-1] != "?":
        raise ValueError(f"prompt must look like 'pourriez-vous <action> <object> ?', got {prompt!r}")
    rest = " ".join(words[1:-1])
    obj = next((o for o in sorted(OBJECTS, key=len, reverse=True) if rest.endswith(" " + o)), None)
    if obj is None:
        raise ValueError(f"prompt {prompt!r} names no known object (one of {OBJECTS})")
    polite = any(answer.startswith(o + " ,") for o in POLITE_OPENERS)
    return polite and f" {obj} " in f" {answer} "


def preference_data(n_train: int = 800, n_test: int = 200, test_share: float = 0.2,
                    off_topic_share: float = 0.3, polite_demo_share: float = 0.5,
                    seed: int = 0) -> PreferenceData:
    """Generate the pairs (the same for the same arguments).

    Args:
        n_train, n_test: numbers of training and held-out pairs (prompts repeat, answers vary).
        test_share: fraction of the (action, object) combinations kept for the held-out pairs.
        off_topic_share: fraction of rejected answers that are polite but about another object.
        polite_demo_share: fraction of SFT demonstrations that are polite (the rest are curt).
    """
    for name, value in (("n_train", n_train), ("n_test", n_test)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    for name, value in (("test_share", test_share), ("off_topic_share", off_topic_share),
                        ("polite_demo_share", polite_demo_share)):
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{name} must be in [0, 1], got {value!r}")
    rng = random.Random(seed)
    combos = [(a, o) for a in ACTIONS for o in OBJECTS]
    rng.shuffle(combos)
    n_held = max(1, round(test_share * len(combos)))
    held, seen = combos[:n_held], combos[n_held:]

    def pairs(pool, n):
        out = []
        for _ in range(n):
            (inf, imp), obj = rng.choice(pool)
            if rng.random() < off_topic_share:
                other = rng.choice([o for o in OBJECTS if o != obj])
                rejected = _polite(rng, inf, other)
            else:
                rejected = _curt(rng, inf, imp, obj)
            out.append(PreferencePair(_prompt(inf, obj), _polite(rng, inf, obj), rejected))
        return out

    train, test = pairs(seen, n_train), pairs(held, n_test)
    demos = []
    for (inf, imp), obj in seen:
        for _ in range(4):
            answer = _polite(rng, inf, obj) if rng.random() < polite_demo_share else _curt(rng, inf, imp, obj)
            demos.append((_prompt(inf, obj), answer))
    rng.shuffle(demos)
    return PreferenceData(train, test, demos, seed, [(inf, obj) for (inf, _), obj in held])


def chat_words(prompt: str, answer: str | None = None) -> list[str]:
    """``<user> prompt <assistant>`` (+ ``answer </s>``) as a list of words: the chat template."""
    words = [CHAT_SPECIALS[0], *prompt.split(), CHAT_SPECIALS[1]]
    return words if answer is None else words + answer.split() + ["</s>"]


def web_text(n_lines: int = 2000, seed: int = 0) -> list[list[str]]:
    """Lines of "web" text about requests (word lists): 40 % a request and a curt reply, 20 % a polite
    reply, 40 % a request followed by other requests. No chat tokens: this is pre-training text."""
    if not isinstance(n_lines, int) or n_lines < 1:
        raise ValueError(f"n_lines must be a positive integer, got {n_lines!r}")
    rng = random.Random(seed)
    lines = []
    for _ in range(n_lines):
        (inf, imp), obj = rng.choice(ACTIONS), rng.choice(OBJECTS)
        u = rng.random()
        if u < 0.4:
            line = f"{_prompt(inf, obj)} {_curt(rng, inf, imp, obj)}"
        elif u < 0.6:
            line = f"{_prompt(inf, obj)} {_polite(rng, inf, obj)}"
        else:
            more = [_prompt(rng.choice(ACTIONS)[0], rng.choice(OBJECTS)) for _ in range(rng.randint(1, 2))]
            line = " ".join([_prompt(inf, obj), *more])
        lines.append(line.split())
    return lines
