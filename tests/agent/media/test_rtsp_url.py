"""Credentials in RTSP URLs: percent-encoded in, never out (logs, errors)."""

from __future__ import annotations

import av.error

from agent.media.errors import SourceAuthError, SourceUnreachable
from agent.media.rtsp import describe_av_error, redact, split_credentials, with_credentials

SECRET = "p@ss:w/rd%"


def test_credentials_are_percent_encoded_into_userinfo() -> None:
    url = with_credentials("rtsp://10.0.0.5:554/Streaming/101", "ad min", SECRET)
    assert url == "rtsp://ad%20min:p%40ss%3Aw%2Frd%25@10.0.0.5:554/Streaming/101"
    assert split_credentials(url) == ("rtsp://10.0.0.5:554/Streaming/101", "ad min", SECRET)


def test_given_credentials_replace_those_in_the_url() -> None:
    url = with_credentials("rtsp://old:older@cam/x", "admin", "")
    assert url == "rtsp://admin@cam/x"
    assert with_credentials("rtsp://cam/x", "", "") == "rtsp://cam/x"


def test_redact_drops_userinfo_and_query() -> None:
    url = "rtsp://admin:p%40ss@cam:554/live?user=admin&password=p%40ss"
    assert redact(url) == "rtsp://cam:554/live?…"


def test_pyav_errors_are_reworded_without_the_url() -> None:
    url = with_credentials("rtsp://cam/x", "admin", SECRET)
    unauthorized = av.error.HTTPUnauthorizedError(-1, "Server returned 401 Unauthorized", url)
    assert url in str(unauthorized)  # why we never use str() of a PyAV error
    err = describe_av_error(unauthorized)
    assert isinstance(err, SourceAuthError)
    refused = describe_av_error(av.error.ConnectionRefusedError(111, "Connection refused", url))
    assert isinstance(refused, SourceUnreachable)
    assert str(refused) == "RTSP failed: Connection refused (error 111)"
    for e in (err, refused, describe_av_error(ValueError(url))):
        assert "cam/x" not in str(e)
        assert "p%40ss" not in str(e)
