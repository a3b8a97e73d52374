"""The chat benchmark's parts: the one-channel sandbox, the config, the access log, the raw loop."""

from __future__ import annotations

import json
import tomllib
import uuid
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import psutil
import pytest

from hirondelle.bench import chat
from hirondelle.bench._chat_hirondelle import Homeserver, room_timeline, write_config
from hirondelle.bench._chat_raw import remap_relations, replay, replay_rooms
from hirondelle.bench._chat_sandbox import (
    GROUP_TOPIC,
    ChannelShape,
    ChatsShape,
    channel_tenant,
    chats_tenant,
    one_channel,
    parse_args,
)
from hirondelle.bench._chat_synapse import Traffic, parse_access
from hirondelle.bench._servers import BenchError, parse_banner
from hirondelle.connectors.matrix_wire import CLIENT, TEAMS_KEY, path_part
from hirondelle.migrator.config import load_config
from hirondelle.sandbox.tenant import Tenant
from hirondelle.tests.servers import SYNAPSE_AS_TOKEN, SynapseServer

BANNER = [
    "Graph URL:      https://127.0.0.1:40123/v1.0\n",
    "Authority:      127.0.0.1:40123\n",
    "CA file:        sandbox-x/ca.pem\n",
    "Tenant id:      11111111-2222-3333-4444-555555555555\n",
    "Client id:      66666666-7777-8888-9999-000000000000\n",
    "Client secret:  s3cret-value  (a fixed public test value)\n",
]
ACCESS = (
    "2026-11-28 19:17:{s},{ms} - synapse.access.http.45625 - 643 - INFO - PUT-9 - 127.0.0.1 - "
    "45625 - {{@hirondelle:localhost}} Processed request: {took}sec/0.000sec ru=(0.004sec, "
    "0.000sec) db=(0.003sec/0.002sec/11) 59B 200 "
    '"{method} /_matrix/client/v3/rooms/%21abc/{what} HTTP/1.1" "hirondelle" [0 dbevts]'
)


def test_shape_round_trips_through_the_sandbox_command_line() -> None:
    shape = ChannelShape(posts=40, replies=3, seed=9)
    argv = shape.argv()
    assert argv[1:3] == ["-m", "hirondelle.bench._chat_sandbox"]
    assert parse_args(argv[3:]) == shape
    spec = shape.spec()
    assert (spec.teams, spec.posts_per_channel, spec.replies_per_post) == (1, 40, 3)
    assert (spec.messages, spec.files_per_drive, spec.large_file_bytes) == (0, 0, 0)


def test_chats_shape_round_trips_through_the_sandbox_command_line() -> None:
    shape = ChatsShape(messages=12, seed=4)
    argv = shape.argv()
    assert "--chats" in argv
    assert parse_args(argv[3:]) == shape
    spec = shape.spec()
    assert (spec.users, spec.teams, spec.messages, spec.big_chat) == (3, 0, 0, False)
    with pytest.raises(SystemExit):
        parse_args(["--chats"])  # a message count is needed


def test_the_chats_sandbox_serves_a_direct_and_a_group_chat_of_the_size_asked() -> None:
    tenant = chats_tenant(ChatsShape(messages=25, seed=5))
    chats = tenant.chats
    assert [(c.chat_type, c.topic) for c in chats.chats] == [
        ("oneOnOne", None),
        ("group", GROUP_TOPIC),
    ]
    users = [u.id for u in tenant.users]
    assert [m.user_id for m in chats.chats[0].members] == users[:2]
    assert [m.user_id for m in chats.chats[1].members] == users
    for one in chats.chats:
        messages = chats.roots(one.id)
        assert len(messages) == 25 + 1  # and the members-added event that opens the chat
        assert messages[-1].created < tenant.teams.now
        assert [m.created for m in messages] == sorted(m.created for m in messages)
    assert chats_tenant(ChatsShape(messages=25, seed=5)).chats.chats == chats.chats


def test_the_sandbox_serves_one_channel_with_every_message_of_it() -> None:
    shape = ChannelShape(posts=30, replies=2, seed=5)
    full = Tenant.generate(shape.spec()).teams
    team = full.teams[0]
    assert len(full.channels(team.id)) == 4  # what the spec alone gives
    wanted = full.channels(team.id)[1]
    kept = one_channel(full)
    [channel] = kept.channels(team.id)
    assert channel == wanted
    roots = full.roots(wanted.id)
    assert [m.id for m in kept.roots(channel.id)] == [m.id for m in roots]
    for root in roots:
        replies = [replace(r, seq=0) for r in full.replies(wanted.id, root.id)]
        assert [replace(r, seq=0) for r in kept.replies(channel.id, root.id)] == replies
    seqs = {m.source_id: m.seq for m in kept.all_messages()}
    assert all(seqs[m.source_id] > seqs[m.root_id] for m in kept.all_messages() if not m.is_root)
    assert kept.now == full.now
    served = channel_tenant(shape).teams
    assert [c.display_name for c in served.channels(team.id)] == [wanted.display_name]


def test_config_is_one_hirondelle_reads_without_secrets(tmp_path: Path) -> None:
    endpoint = parse_banner(BANNER)
    homeserver = Homeserver("http://127.0.0.1:8008", "localhost", "as-secret-token")
    path = write_config(tmp_path, endpoint, homeserver, "m365_bench1_")
    text = path.read_text(encoding="utf-8")
    assert "s3cret-value" not in text and "as-secret-token" not in text
    table = tomllib.loads(text)["targets"]["chat"]
    assert table["mode"] == "appservice" and table["room_alias_prefix"] == "m365_bench1_"
    config = load_config(path)
    assert config.source.graph_url == endpoint.graph_url
    target = config.targets["chat"]
    assert (target.kind, target.options["as_token_env"]) == ("matrix", "HIRONDELLE_BENCH_AS_TOKEN")


def test_relations_point_at_the_replayed_events() -> None:
    thread: dict[str, Any] = {
        "body": "re",
        "m.relates_to": {
            "rel_type": "m.thread",
            "event_id": "$root",
            "is_falling_back": True,
            "m.in_reply_to": {"event_id": "$root"},
        },
    }
    mapped = remap_relations(thread, {"$root": "$new"})
    assert mapped["m.relates_to"]["event_id"] == "$new"
    assert mapped["m.relates_to"]["m.in_reply_to"]["event_id"] == "$new"
    assert thread["m.relates_to"]["event_id"] == "$root"  # the original is left alone
    reaction = {"m.relates_to": {"rel_type": "m.annotation", "event_id": "$a", "key": "👍"}}
    assert remap_relations(reaction, {"$a": "$b"})["m.relates_to"]["key"] == "👍"
    assert remap_relations({"body": "plain"}, {}) == {"body": "plain"}
    with pytest.raises(BenchError):
        remap_relations(reaction, {})


def test_access_log_gives_each_sides_sends_and_server_time() -> None:
    lines = [
        ACCESS.format(s="04", ms="100", took="0.120", method="POST", what="invite"),
        "2026-11-28 19:17:04,200 - synapse.handlers.room - 1 - INFO - not an access line",
        ACCESS.format(s="05", ms="000", took="0.010", method="PUT", what="send/m.room.message/t1"),
        ACCESS.format(s="07", ms="500", took="0.030", method="PUT", what="send/m.reaction/t2"),
        ACCESS.format(s="08", ms="000", took="0.002", method="PUT", what="state/m.room.name/"),
    ]
    requests = parse_access(lines)
    assert [r.method for r in requests] == ["POST", "PUT", "PUT", "PUT"]
    assert requests[1].at == datetime(2026, 11, 28, 19, 17, 5)
    traffic = Traffic.of(requests)
    assert (traffic.requests, traffic.sends) == (4, 2)
    assert traffic.send_span == pytest.approx(2.5)
    assert traffic.send_server_seconds == pytest.approx(0.04)
    assert traffic.server_seconds == pytest.approx(0.162)
    assert Traffic.of([]).send_span == 0.0
    assert requests[1].room == "%21abc" and traffic.rooms_at_once == pytest.approx(1.0)
    other = ACCESS.format(s="06", ms="500", took="0.01", method="PUT", what="send/m.reaction/t3")
    two = Traffic.of(requests + parse_access([other.replace("%21abc", "%21def")]))
    assert two.rooms_at_once == pytest.approx(1.0)  # a room of one event spans nothing
    later = other.replace("%21abc", "%21def").replace(":06,500", ":07,000")
    both = Traffic.of(requests + parse_access([other.replace("%21abc", "%21def"), later]))
    assert both.rooms_at_once == pytest.approx(3.0 / 2.5)


def test_headline_ratio_is_hirondelle_over_the_raw_loop() -> None:
    result = {"events_per_s": 12.0, "raw_events_per_s": 48.0, "send_phase_events_per_s": 40.0}
    headline = chat.summary(result)
    assert list(headline)[:2] == ["events_per_s", "ratio_vs_raw"]
    assert headline["ratio_vs_raw"] == 0.25 and headline["send_phase_ratio_vs_raw"] == 0.833
    assert chat.summary({"events_per_s": 3.0})["ratio_vs_raw"] is None
    assert chat.parse_args(["--quick"]).posts == chat.QUICK_POSTS


# -- against a real Synapse ---------------------------------------------------------------------


def _sample_room(synapse: SynapseServer) -> tuple[str, str]:
    """A room with a puppet's post, its threaded reply, and the bot's reaction to the post."""
    puppet = f"_m365_bench{uuid.uuid4().hex[:6]}"
    puppet_id = f"@{puppet}:{synapse.server_name}"
    token = SYNAPSE_AS_TOKEN
    body = {"type": "m.login.application_service", "username": puppet, "inhibit_login": True}
    synapse.request("POST", f"{CLIENT}/register", token, body)
    room = synapse.request("POST", f"{CLIENT}/createRoom", token, {"preset": "private_chat"})
    room_id = str(room["room_id"])
    rooms = f"{CLIENT}/rooms/{path_part(room_id)}"
    synapse.request("POST", f"{rooms}/invite", token, {"user_id": puppet_id})
    synapse.request("POST", f"{rooms}/join?user_id={path_part(puppet_id)}", token, {})
    as_puppet = f"user_id={path_part(puppet_id)}"

    def send(kind: str, txn: str, content: dict[str, Any], query: str) -> str:
        path = f"{rooms}/send/{kind}/{uuid.uuid4().hex}{txn}?{query}"
        return str(synapse.request("PUT", path, token, {**content, TEAMS_KEY: txn})["event_id"])

    root = send(
        "m.room.message", "1", {"msgtype": "m.text", "body": "post"}, f"{as_puppet}&ts=1000"
    )
    reply = {"rel_type": "m.thread", "event_id": root, "m.in_reply_to": {"event_id": root}}
    send(
        "m.room.message", "2", {"msgtype": "m.text", "body": "re", "m.relates_to": reply}, as_puppet
    )
    annotation = {"rel_type": "m.annotation", "event_id": root, "key": "👍"}
    send("m.reaction", "3", {"m.relates_to": annotation}, "ts=3000")
    return room_id, puppet_id


def test_raw_loop_replays_the_same_events_into_a_fresh_room(synapse: SynapseServer) -> None:
    homeserver = Homeserver(synapse.url, synapse.server_name, SYNAPSE_AS_TOKEN)
    room, puppet_id = _sample_room(synapse)
    with homeserver.client() as client:
        events = [e for e in room_timeline(client, room) if TEAMS_KEY in e["content"]]
        assert len(events) == 3
        run = replay(homeserver, events)
        [copied] = run.rooms
        copies = [e for e in room_timeline(client, copied) if TEAMS_KEY in e["content"]]
        both = replay_rooms(homeserver, [events, events[:1]])
        second = [e for e in room_timeline(client, both.rooms[1]) if TEAMS_KEY in e["content"]]
    assert copied != room and run.events == 3 and run.events_per_s > 0
    assert len(set(both.rooms) | {copied, room}) == 4 and both.events == 4
    assert [e["origin_server_ts"] for e in second] == [1000]
    assert [(e["type"], e["sender"]) for e in copies] == [(e["type"], e["sender"]) for e in events]
    assert copies[0]["sender"] == puppet_id and copies[0]["origin_server_ts"] == 1000
    assert copies[2]["origin_server_ts"] == 3000
    root = copies[0]["event_id"]
    assert copies[1]["content"]["m.relates_to"]["event_id"] == root
    assert copies[2]["content"]["m.relates_to"]["event_id"] == root


def test_replay_refuses_a_relation_to_an_event_it_did_not_send(synapse: SynapseServer) -> None:
    homeserver = Homeserver(synapse.url, synapse.server_name, SYNAPSE_AS_TOKEN)
    room, _ = _sample_room(synapse)
    with homeserver.client() as client:
        events = [e for e in room_timeline(client, room) if TEAMS_KEY in e["content"]]
    with pytest.raises(BenchError, match="not replayed"):
        replay(homeserver, events[1:])


def test_a_small_channel_end_to_end(capsys: pytest.CaptureFixture[str]) -> None:
    """The whole benchmark on a channel of four posts: every event counted on both sides."""
    before = _synapse_children()
    assert chat.main(["--posts", "4", "--replies", "2", "--seed", "3", "--timeout", "240"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    result = json.loads(lines[-1])
    tenant = channel_tenant(ChannelShape(4, 2, 3)).teams
    [channel] = tenant.channels(tenant.teams[0].id)
    roots = tenant.roots(channel.id)
    replies = sum(len(tenant.replies(channel.id, r.id)) for r in roots)
    assert result["messages"] == result["copied"] == len(roots) + replies
    assert result["source_posts"] == len(roots)
    assert result["raw_events"] == result["events"] == result["messages"] + result["reactions"]
    assert result["events_per_s"] > 0 and result["ratio_vs_raw"] > 0
    assert result["synapse_event_puts"] == result["events"]
    assert _synapse_children() == before  # the benchmark's own Synapse is gone


def test_two_small_chats_end_to_end(capsys: pytest.CaptureFixture[str]) -> None:
    """The chats mode on two chats of three messages: both rooms replayed, every event."""
    argv = ["--chats", "--messages", "3", "--seed", "3", "--workers", "1", "--timeout", "240"]
    assert chat.main(argv) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (result["workload"], result["rooms"], result["messages_per_chat"]) == ("chats", 2, 3)
    assert result["messages"] == result["copied"] == 2 * (3 + 1)  # with the members-added events
    assert sum(result["room_events"]) == result["events"] == result["raw_events"]
    assert result["synapse_event_puts"] == result["events"]
    assert result["ratio_vs_raw"] > 0 and "source_posts" not in result


def _synapse_children() -> set[int]:
    found = set()
    for child in psutil.Process().children():
        try:
            if "synapse.app.homeserver" in " ".join(child.cmdline()):
                found.add(child.pid)
        except psutil.Error:
            continue
    return found
