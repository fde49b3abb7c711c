"""Deliverability parts of the send engine: DKIM signatures and VERP return paths.

Each is a composer wrapped around another (`parts.Composer`): the finished bytes are signed just
before the transport sends them, and the envelope sender names the delivery, so the mail builder
knows nothing of either."""

import dataclasses
from collections.abc import Mapping

from app.bounces.verp import ReturnPaths
from app.core.config import Settings
from app.sending.dkim import DkimSigner
from app.sending.parts import CampaignState, ComposedMail, Composer, Job


class SigningComposer:
    def __init__(self, inner: Composer, signer: DkimSigner) -> None:
        self.inner = inner
        self.signer = signer

    async def compose(
        self, job: Job, *, states: Mapping[int, CampaignState], eight_bit: bool
    ) -> ComposedMail:
        mail = await self.inner.compose(job, states=states, eight_bit=eight_bit)
        return dataclasses.replace(mail, raw=self.signer.sign(mail.raw))


class ReturnPathComposer:
    def __init__(self, inner: Composer, return_paths: ReturnPaths) -> None:
        self.inner = inner
        self.return_paths = return_paths

    async def compose(
        self, job: Job, *, states: Mapping[int, CampaignState], eight_bit: bool
    ) -> ComposedMail:
        mail = await self.inner.compose(job, states=states, eight_bit=eight_bit)
        return dataclasses.replace(
            mail, envelope_from=self.return_paths.sender_for(job.delivery_id)
        )


def with_deliverability(composer: Composer, settings: Settings) -> Composer:
    """`composer` with DKIM signing and VERP return paths, as far as the settings ask for them."""
    signer = DkimSigner.from_settings(settings)
    if signer is not None:
        composer = SigningComposer(composer, signer)
    return_paths = ReturnPaths.from_settings(settings)
    if return_paths is not None:
        composer = ReturnPathComposer(composer, return_paths)
    return composer
