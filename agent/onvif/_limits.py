"""Limits on what onvif-zeep-async may read and parse from a camera (hostile SOAP).

onvif-zeep-async 4.3.0 reads whole bodies without a bound and sets zeep's ``xml_huge_tree``
(libxml2's size and depth limits off) on the settings every client shares. ``harden_settings``
turns the limits back on and refuses any DTD (XXE and entity expansion need one; ONVIF never
does, nor do the bundled WSDLs); ``bounded_client_session`` makes the library's aiohttp sessions
refuse a body past ``MAX_SOAP_BYTES`` while reading it, so a 10 MB answer costs 1 MiB, not a
parse. ``_lib.py`` applies both once, at import.
"""

from __future__ import annotations

from typing import Any

import aiohttp

from agent.onvif.event_parsers import MAX_SOAP_BYTES

_CHUNK = 64 * 1024


class BoundedResponse(aiohttp.ClientResponse):
    """A response whose ``read()`` stops with ClientPayloadError past MAX_SOAP_BYTES."""

    async def read(self) -> bytes:
        """The body, read in chunks and refused once it is larger than the bound."""
        if self._body is None:
            if (self.content_length or 0) > MAX_SOAP_BYTES:
                self.close()
                raise aiohttp.ClientPayloadError(f"body of {self.content_length} bytes refused")
            chunks: list[bytes] = []
            size = 0
            while chunk := await self.content.read(_CHUNK):
                size += len(chunk)
                if size > MAX_SOAP_BYTES:
                    self.close()
                    raise aiohttp.ClientPayloadError(f"body over {MAX_SOAP_BYTES} bytes refused")
                chunks.append(chunk)
            self._body = b"".join(chunks)
        return await super().read()


def bounded_client_session(*args: Any, **kwargs: Any) -> aiohttp.ClientSession:
    """``aiohttp.ClientSession`` whose responses are BoundedResponse (for the library's
    ``onvif.client.ClientSession`` name: it builds one session per service itself)."""
    kwargs.setdefault("response_class", BoundedResponse)
    return aiohttp.ClientSession(*args, **kwargs)


def harden_settings(settings: Any) -> None:
    """zeep Settings with libxml2's limits on, DTDs and entities refused, nothing fetched."""
    settings.xml_huge_tree = False
    settings.forbid_dtd = True
    settings.forbid_entities = True
    settings.forbid_external = True
