"""The application factory: engine, routers and error handlers."""

import asyncio
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import Depends, FastAPI
from starlette.types import Receive, Scope, Send

from app import __version__
from app.amplifiers.router import router as amplifiers_router
from app.bounces.receiver import BounceHandler, start_receiver
from app.bounces.router import router as bounces_router
from app.bounces.verp import ReturnPaths
from app.campaigns.router import router as campaigns_router
from app.conversions.router import router as conversions_router
from app.conversions.writer import ConversionWriter
from app.core.config import Settings, get_settings
from app.core.db import make_engine, make_sessionmaker, utcnow
from app.core.errors import UnexpectedErrors, install_error_handlers
from app.core.limits import BodySizeLimit
from app.core.observability import ObservedRequests
from app.core.openapi import install_openapi, operation_id
from app.core.params import refuse_control_characters
from app.core.problem_pages import router as problems_router
from app.core.security import Signer
from app.dashboard.router import router as dashboard_router
from app.engagement.router import router as engagement_router
from app.health import router as health_router
from app.keys.cache import ApiKeyCache
from app.keys.router import router as keys_router
from app.organizations.router import router as organizations_router
from app.pages.router import router as pages_router
from app.sending.engine import build_worker, start_click_retention
from app.sending.router import router as sending_router
from app.stats.caching import AnswerCache
from app.stats.router import router as stats_router
from app.tracking.fastpath import OPENAPI_PATHS, Tracking, is_redirect, redirect
from app.tracking.partitions import prepare_click_partitions
from app.tracking.recorder import ClickRecorder
from app.tracking.resolver import LinkResolver
from app.tracking.salts import VisitorSalts
from app.webhooks.dispatcher import start_dispatcher
from app.webhooks.router import router as webhooks_router

logger = logging.getLogger("amplify")


class AmplifyApp(FastAPI):
    """FastAPI with `/r/{code}` answered before any of the framework's layers (its error,
    telemetry and body-limit middleware, routing): the redirect is the hottest path and
    handles its own errors."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if is_redirect(scope):
            tracking: Tracking | None = getattr(self.state, "tracking", None)
            if tracking is not None:
                await redirect(tracking, scope, send)
                return
        await super().__call__(scope, receive, send)


def create_app(settings: Settings | None = None) -> AmplifyApp:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: AmplifyApp) -> AsyncIterator[None]:
        engine = make_engine(settings.database_url, **settings.pool_options())
        app.state.engine = engine
        app.state.sessionmaker = make_sessionmaker(engine)
        await prepare_click_partitions(engine, now=utcnow())
        recorder = ClickRecorder(engine, flush_seconds=settings.click_flush_seconds)
        recorder.start()
        app.state.tracking = Tracking(
            settings=settings,
            resolver=LinkResolver(engine, attribution_param=settings.attribution_param),
            salts=VisitorSalts(engine),
            recorder=recorder,
        )
        app.state.conversions = ConversionWriter(
            engine,
            click_ids=app.state.tracking.click_ids,
            window_days=settings.attribution_days,
            pending_clicks=recorder.flush,
        )
        worker_task = retention_task = dispatcher_task = None
        if settings.worker == "on":
            worker = build_worker(settings, app.state.sessionmaker, app.state.signer)
            app.state.worker = worker
            worker_task = asyncio.create_task(worker.run(), name="amplify-worker")
            retention_task = start_click_retention(settings, app.state.sessionmaker)
            app.state.dispatcher, dispatcher_task = start_dispatcher(
                settings, app.state.sessionmaker
            )
        # Outbound calls made while answering a request (confirming an SNS subscription).
        app.state.outbound_http = httpx.AsyncClient(timeout=10, follow_redirects=False)
        bounce_server = await _development_bounce_receiver(app, settings)
        _settle_garbage_collector()
        try:
            yield
        finally:
            if bounce_server is not None:
                bounce_server.close()
            await app.state.outbound_http.aclose()
            if worker_task is not None:
                app.state.worker.stop()
                await worker_task
            if retention_task is not None:
                retention_task.cancel()
                await asyncio.gather(retention_task, return_exceptions=True)
            if dispatcher_task is not None:
                app.state.dispatcher.stop()
                await dispatcher_task
            await recorder.close()
            app.state.tracking.resolver.close()
            await app.state.conversions.close()
            await engine.dispose()

    app = AmplifyApp(
        title="Amplify",
        version=__version__,
        description="Email-campaign amplification: digests of ready-to-share messages, "
        "tracked share links and statistics.",
        lifespan=lifespan,
        generate_unique_id_function=operation_id,
        dependencies=[Depends(refuse_control_characters)],
    )
    app.state.settings = settings
    app.state.signer = Signer(settings.signing_key())
    app.state.clock = utcnow  # the wall clock of slots and pauses (tests move it)
    app.state.answers = AnswerCache()
    app.state.api_keys = ApiKeyCache(ttl_seconds=settings.api_key_cache_seconds)
    install_error_handlers(app)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(UnexpectedErrors)  # outside the body limit: its 413 is no error
    app.add_middleware(ObservedRequests)
    app.include_router(health_router)
    app.include_router(keys_router)
    app.include_router(amplifiers_router)
    app.include_router(campaigns_router)
    app.include_router(sending_router)
    app.include_router(stats_router)
    app.include_router(organizations_router)
    app.include_router(engagement_router)
    app.include_router(conversions_router)
    app.include_router(webhooks_router)
    app.include_router(pages_router)
    app.include_router(dashboard_router)
    app.include_router(bounces_router)
    app.include_router(problems_router)
    install_openapi(app, extra_paths=OPENAPI_PATHS)
    return app


async def _development_bounce_receiver(
    app: "AmplifyApp", settings: Settings
) -> asyncio.Server | None:
    """`amplify serve` in development receives bounces too (production runs `amplify bounces`)."""
    if settings.env != "development" or settings.worker == "off":
        return None
    handler = BounceHandler(app.state.sessionmaker, ReturnPaths.from_settings(settings))
    try:
        server = await start_receiver(
            handler,
            host="127.0.0.1",
            port=settings.bounces_port,
            max_bytes=settings.bounce_max_bytes,
        )
    except OSError as exc:
        logger.info("no development bounce receiver on port %s: %s", settings.bounces_port, exc)
        return None
    logger.info("development bounce receiver on 127.0.0.1:%s", settings.bounces_port)
    return server


def _settle_garbage_collector() -> None:
    """What exists at startup (modules, mappings, the bot patterns) lives as long as the
    process: freeze it out of every future collection, and collect the young generation less
    often. Under redirect load this cuts collector time about tenfold (8% of CPU to under 1%).
    The middle generation is collected every 2 young collections rather than 20: it holds
    what lived through them, the link cache's new entries first of all (tens of thousands on
    launch day), and scanning 20 collections' worth at once stalled the loop for 50–85 ms;
    full collections stay as rare as before (every 400 young ones)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 2, 200)
