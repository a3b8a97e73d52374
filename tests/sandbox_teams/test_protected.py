"""Channel messages as protected APIs: an app Microsoft has not approved is refused with 403."""

from __future__ import annotations

from sandbox_helpers import raw_client

from hirondelle.sandbox.server import SandboxServer


def test_an_unapproved_app_is_refused_channel_messages_only(fresh: SandboxServer) -> None:
    # Channel messages, their replies and delta need Microsoft's approval with application
    # permissions: https://learn.microsoft.com/en-us/graph/teams-protected-apis; the 403 and
    # its message as the service answers them: github.com/leeford/Backup-TeamsChat/issues/12
    data = fresh.tenant.teams
    team = data.teams[0]
    channel = data.channels(team.id)[0]
    root = data.roots(channel.id)[-1]
    path = f"teams/{team.id}/channels/{channel.id}"
    refused_paths = [
        f"{path}/messages",
        f"{path}/messages/delta",
        f"{path}/messages/{root.id}",
        f"{path}/messages/{root.id}/replies",
        f"{path}/messages/{root.id}/hostedContents",
    ]
    open_paths = ["teams", f"teams/{team.id}/channels", f"{path}/members"]
    fresh.set_protected_apis(False)
    with raw_client(fresh) as client:
        refused = [client.get(p) for p in refused_paths]
        still = [client.get(p) for p in open_paths]
        fresh.set_protected_apis(True)
        approved = client.get(refused_paths[0])
    for answer in refused:
        assert answer.status_code == 403, answer.request.url
        error = answer.json()["error"]
        assert error["code"] == "Forbidden"
        assert error["message"].startswith("Invoked API requires Protected API access")
        assert "teams-protected-apis" in error["message"]
    assert [a.status_code for a in still] == [200, 200, 200]
    assert approved.status_code == 200 and approved.json()["value"]
