"""The simulated clicks on a sent campaign's links: who shares what, who visits, which bots come."""

import ipaddress
import math
import random
from dataclasses import dataclass

from app.demo.data import (
    DESKTOP_AGENTS,
    MOBILE_AGENTS,
    PREVIEW_ADDRESSES,
    PREVIEW_BOTS,
    REFERERS,
    SCANNER_ADDRESS,
    SCANNER_AGENT,
    SHARE_RATE,
)
from app.models import LinkKind


@dataclass
class ClickTally:
    """What the simulation sent, by kind, and how the redirects answered."""

    shares: int = 0
    sharers: int = 0
    visits: int = 0
    repeat_visits: int = 0
    previews: int = 0
    scanner: int = 0
    redirects: int = 0
    failures: int = 0

    @property
    def planned(self) -> int:
        return self.shares + self.visits + self.previews + self.scanner

    @property
    def bots(self) -> int:
        return self.previews + self.scanner


@dataclass(frozen=True)
class Hit:
    """One simulated click: a GET of /r/{code} from one visitor."""

    code: str
    user_agent: str
    address: str
    referer: str | None = None


@dataclass(frozen=True)
class LinkRow:
    code: str
    kind: str
    amplifier_id: int
    position: int
    network: str


def _agent(templates: tuple[str, ...], rng: random.Random) -> str:
    return rng.choice(templates).format(
        v=rng.randint(118, 126), m=rng.randint(0, 5), p=rng.randint(6, 8)
    )


class Addresses:
    """Distinct client addresses (from 198.18.0.0/15, reserved for tests), one per visitor."""

    def __init__(self, rng: random.Random) -> None:
        self._next = int(ipaddress.IPv4Address("198.18.0.0")) + rng.randint(1, 50_000)

    def __call__(self) -> str:
        self._next += 1
        return str(ipaddress.IPv4Address(self._next))


@dataclass
class ClickPlan:
    scanner: list[Hit]
    shares: list[Hit]
    follow_ups: list[Hit]  # link previews and visits, after the shares
    tally: ClickTally


def plan_clicks(
    links: list[LinkRow], audiences: dict[int, dict[str, int]], rng: random.Random
) -> ClickPlan:
    """Realistic clicks on a sent campaign's links.

    - ~60% of the amplifiers share 1-3 (message, network) pairs: at most two from their
      computer, a third from their phone (a person clicking three links of their own digest
      within seconds from one browser would rightly be flagged as a burst);
    - every post is previewed once by its network's fetcher (LinkedInBot, facebookexternalhit …);
    - each post brings visitors (more for bigger audiences), each a distinct address and browser,
      one in ten of them clicking twice;
    - a mail-security gateway opens every share link of one digest at once (a burst).
    """
    tally = ClickTally()
    share_codes: dict[int, dict[tuple[int, str], str]] = {}
    visit_codes: dict[tuple[int, int, str], str] = {}
    for link in links:
        key = (link.position, link.network)
        if link.kind == LinkKind.SHARE:
            share_codes.setdefault(link.amplifier_id, {})[key] = link.code
        else:
            visit_codes[(link.amplifier_id, *key)] = link.code
    address = Addresses(rng)
    amplifiers = sorted(share_codes)

    scanned = rng.choice(amplifiers)
    scanner = [Hit(code, SCANNER_AGENT, SCANNER_ADDRESS) for code in share_codes[scanned].values()]
    tally.scanner = len(scanner)

    shares: list[Hit] = []
    follow_ups: list[Hit] = []
    sharers = rng.sample(amplifiers, max(1, round(SHARE_RATE * len(amplifiers))))
    for amplifier_id in sorted(sharers):
        devices = [
            (_agent(DESKTOP_AGENTS, rng), address()),
            (_agent(MOBILE_AGENTS, rng), address()),
        ]
        options = sorted(share_codes[amplifier_id])
        picks = rng.sample(options, min(len(options), rng.choice((1, 1, 2, 2, 3))))
        for index, (position, network) in enumerate(picks):
            agent, home = devices[0 if index < 2 else 1]
            shares.append(Hit(share_codes[amplifier_id][(position, network)], agent, home))
            visit = visit_codes[(amplifier_id, position, network)]
            follow_ups.append(Hit(visit, PREVIEW_BOTS[network], PREVIEW_ADDRESSES[network]))
            tally.previews += 1
            followers = audiences.get(amplifier_id, {}).get(network, 0)
            for _ in range(min(25, rng.randint(1, 3) + round(math.sqrt(followers) / 10))):
                templates = MOBILE_AGENTS if rng.random() < 0.6 else DESKTOP_AGENTS
                visitor = Hit(visit, _agent(templates, rng), address(), REFERERS.get(network))
                follow_ups.append(visitor)
                tally.visits += 1
                if rng.random() < 0.1:
                    follow_ups.append(visitor)
                    tally.visits += 1
                    tally.repeat_visits += 1
    tally.shares = len(shares)
    tally.sharers = len(sharers)
    rng.shuffle(follow_ups)
    return ClickPlan(scanner, shares, follow_ups, tally)
