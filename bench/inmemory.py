"""The comparator of `http_inbound`: the shape of the in-memory solutions people write for
this job — FastAPI on uvicorn, the caregivers' open offers in a dict, one lookup per SMS
webhook, nothing durable, no signature check — on a listening socket handed over by the
benchmark.

`python -m bench.inmemory FD` serves on the inherited listening socket `FD` until killed.
uvicorn runs its plain configuration (h11 and asyncio, one worker, no access log), so the
figure does not depend on which optional accelerators happen to be installed.
"""

from __future__ import annotations

import sys

from fastapi import FastAPI, Request, Response

from shiftd.paths import TWILIO_SMS

from .stats import phone_of

TWIML = b'<?xml version="1.0" encoding="UTF-8"?><Response/>'
#: Phones with an open offer: the pools the load generator's runs draw from (from 0 on).
CAREGIVERS = 200_000


def create_app(caregivers: int = CAREGIVERS) -> FastAPI:
    """The app: `POST /webhooks/twilio/sms` reads the form and looks its sender up; `GET
    /health` answers the load generator's warm-up."""
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    offers = {phone_of(i): f"sh-{i // 40:07d}" for i in range(caregivers)}
    declined: dict[str, str] = {}

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post(TWILIO_SMS)
    async def sms(request: Request) -> Response:
        form = await request.form()
        sender = str(form.get("From", ""))
        shift = offers.get(sender)
        if shift is not None:
            declined[sender] = shift
        return Response(TWIML, media_type="text/xml")

    return app


def main(fd: int) -> None:
    import uvicorn

    uvicorn.run(
        create_app(),
        fd=fd,
        loop="asyncio",
        http="h11",
        lifespan="off",
        access_log=False,
        log_level="warning",
        timeout_keep_alive=60,
    )


if __name__ == "__main__":
    main(int(sys.argv[1]))
