"""The team's people, user groups and channels, including the app's DMs opened on demand."""

from __future__ import annotations

import copy

from bot.emulator.clock import Clock
from bot.emulator.state import WatchedState
from bot.emulator.team import Channel, Identity, User, Usergroup


class Roster(WatchedState):
    """Who is in the team and where they talk."""

    def __init__(self, identity: Identity, clock: Clock) -> None:
        super().__init__(identity, clock)
        self._users: dict[str, User] = {}
        self._usergroups: dict[str, Usergroup] = {}
        self._channels: dict[str, Channel] = {}
        self._users[identity.bot_user_id] = User(
            id=identity.bot_user_id,
            name=identity.bot_name,
            real_name=identity.bot_name,
            team_id=identity.team_id,
            is_bot=True,
            bot_id=identity.bot_id,
        )

    def add_user(
        self,
        user_id: str,
        name: str,
        *,
        real_name: str | None = None,
        email: str | None = None,
        is_admin: bool = False,
        is_bot: bool = False,
        tz: str = "Europe/Berlin",
    ) -> User:
        """Add a person to the team."""
        user = User(
            user_id,
            name,
            real_name or name,
            self.identity.team_id,
            is_bot,
            is_admin,
            email=email,
            tz=tz,
        )
        with self._lock:
            self._users[user_id] = user
            self._changed("user_added", user=user_id)
        return copy.deepcopy(user)

    def add_usergroup(
        self,
        usergroup_id: str,
        handle: str,
        users: list[str] | tuple[str, ...] = (),
        *,
        name: str | None = None,
        description: str = "",
        disabled: bool = False,
    ) -> Usergroup:
        """Add a user group (`@handle`); its users must already exist."""
        with self._lock:
            unknown = [u for u in users if u not in self._users]
            if unknown:
                raise ValueError(f"add these users first: {', '.join(unknown)}")
            group = Usergroup(
                usergroup_id,
                handle,
                name or handle,
                self.identity.team_id,
                list(users),
                description,
                disabled,
            )
            self._usergroups[usergroup_id] = group
            self._changed("usergroup_added")
            return copy.deepcopy(group)

    def add_channel(
        self,
        channel_id: str,
        name: str,
        *,
        is_private: bool = False,
        members: list[str] | None = None,
        bot_is_member: bool = True,
        is_archived: bool = False,
    ) -> Channel:
        """Add a channel; `members=None` makes every user a member."""
        channel = Channel(
            channel_id,
            name,
            self.identity.team_id,
            is_private,
            members=set(members) if members is not None else None,
            bot_is_member=bot_is_member,
            is_archived=is_archived,
        )
        with self._lock:
            self._channels[channel_id] = channel
            self._changed("channel_added", channel=channel_id)
        return copy.deepcopy(channel)

    def user(self, user_id: str) -> User | None:
        with self._lock:
            found = self._users.get(user_id)
            return copy.deepcopy(found) if found else None

    @property
    def users(self) -> list[User]:
        """Everyone in the team, the app's bot user included."""
        with self._lock:
            return copy.deepcopy(list(self._users.values()))

    def usergroup(self, usergroup_id: str) -> Usergroup | None:
        with self._lock:
            found = self._usergroups.get(usergroup_id)
            return copy.deepcopy(found) if found else None

    @property
    def usergroups(self) -> list[Usergroup]:
        with self._lock:
            return copy.deepcopy(list(self._usergroups.values()))

    @property
    def channels(self) -> list[Channel]:
        """Every channel, the app's DMs included, in the order they were added."""
        with self._lock:
            return copy.deepcopy(list(self._channels.values()))

    def channel(self, channel_id: str) -> Channel | None:
        with self._lock:
            found = self._channels.get(channel_id)
            return copy.deepcopy(found) if found else None

    def resolve_channel(self, reference: str) -> Channel | None:
        """A channel by ID, by name (`#name` or `name`), or a user's DM with the app by user ID."""
        with self._lock:
            if reference in self._channels:
                return copy.deepcopy(self._channels[reference])
            if reference in self._users and not self._users[reference].is_bot:
                return self.dm_channel(reference)
            name = reference.removeprefix("#")
            for channel in self._channels.values():
                if channel.name == name and not channel.is_im:
                    return copy.deepcopy(channel)
            return None

    def dm_channel(self, user_id: str) -> Channel:
        """The app's direct-message channel with a person, opened on first use."""
        with self._lock:
            if user_id not in self._users:
                raise ValueError(f"no user {user_id}")
            channel_id = "D" + user_id[1:]
            if channel_id not in self._channels:
                self._channels[channel_id] = Channel(
                    channel_id,
                    user_id,
                    self.identity.team_id,
                    is_private=True,
                    is_im=True,
                    im_user=user_id,
                    members={user_id},
                )
                self._changed("channel_added", channel=channel_id)
            return copy.deepcopy(self._channels[channel_id])
