//! The commands' table ([`COMMANDS`]) and the help text `/help` shows.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

/// One command's help.
#[derive(Debug, PartialEq, Eq)]
pub struct CommandInfo {
    /// The name, without the slash.
    pub name: &'static str,
    /// Other names for it, without the slash.
    pub aliases: &'static [&'static str],
    /// The syntax.
    pub usage: &'static str,
    /// What it does.
    pub description: &'static str,
    /// An example line.
    pub example: &'static str,
}

/// Every command, in the order `/help` lists them.
pub const COMMANDS: &[CommandInfo] = &[
    CommandInfo {
        name: "msg",
        aliases: &["dm"],
        usage: "/msg USER TEXT",
        description: "Send a direct message to USER, who must be online.",
        example: "/msg bob see you at 5",
    },
    CommandInfo {
        name: "me",
        aliases: &[],
        usage: "/me ACTION",
        description: "Send a public action: others see \"* alice ACTION\".",
        example: "/me waves",
    },
    CommandInfo {
        name: "say",
        aliases: &[],
        usage: "/say TEXT",
        description: "Send TEXT as a public message, even if it is PM, DM or EX or starts with /.",
        example: "/say PM",
    },
    CommandInfo {
        name: "who",
        aliases: &["users"],
        usage: "/who",
        description: "List who is online.",
        example: "/who",
    },
    CommandInfo {
        name: "join",
        aliases: &[],
        usage: "/join #ROOM",
        description: "Join a room (made if it does not exist; you see its latest messages); plain lines then go there.",
        example: "/join #rust",
    },
    CommandInfo {
        name: "part",
        aliases: &["leave"],
        usage: "/part [#ROOM] [REASON]",
        description: "Leave a room (the active one when not named); its members see REASON.",
        example: "/part #rust see you",
    },
    CommandInfo {
        name: "go",
        aliases: &[],
        usage: "/go [#ROOM|*]",
        description: "Choose where plain lines go: a room you are in, or (alone, or *) everyone online.",
        example: "/go #rust",
    },
    CommandInfo {
        name: "rooms",
        aliases: &["list"],
        usage: "/rooms",
        description: "List the rooms, with their members and topics.",
        example: "/rooms",
    },
    CommandInfo {
        name: "names",
        aliases: &[],
        usage: "/names [#ROOM]",
        description: "List a room's members (the active room's; with none active, who is online).",
        example: "/names #rust",
    },
    CommandInfo {
        name: "topic",
        aliases: &[],
        usage: "/topic [#ROOM] [TEXT]",
        description: "Set a room's topic (the active room's when not named); without TEXT, show it.",
        example: "/topic #rust release on Friday",
    },
    CommandInfo {
        name: "history",
        aliases: &[],
        usage: "/history [#ROOM] [N]",
        description: "Show the latest N messages of a room (20 when not given, at most 200).",
        example: "/history #rust 50",
    },
    CommandInfo {
        name: "away",
        aliases: &[],
        usage: "/away [TEXT]",
        description: "Say you are away (who sends you a DM is told TEXT); /away alone: you are back.",
        example: "/away at lunch until 2",
    },
    CommandInfo {
        name: "whois",
        aliases: &[],
        usage: "/whois USER",
        description: "Show whether USER is online, for how long, and whether away.",
        example: "/whois bob",
    },
    CommandInfo {
        name: "notice",
        aliases: &[],
        usage: "/notice TEXT",
        description: "Server admins: send TEXT to everyone online, marked as a notice.",
        example: "/notice the server restarts at 18:00 UTC",
    },
    CommandInfo {
        name: "audit",
        aliases: &[],
        usage: "/audit [N]",
        description: "Server admins: show the latest N moderation actions (50 when not given, at most 200).",
        example: "/audit 20",
    },
    CommandInfo {
        name: "banip",
        aliases: &[],
        usage: "/banip RANGE [DURATION] [REASON]",
        description: "Server admins: ban an address or network (203.0.113.7, 203.0.113.0/24, 2001:db8::/64; at least /8 or /16): its sessions end and it gets no answer. DURATION like 30m, 2h, 7d, 2w; none: until /unbanip.",
        example: "/banip 203.0.113.0/24 7d spam bots",
    },
    CommandInfo {
        name: "unbanip",
        aliases: &[],
        usage: "/unbanip RANGE",
        description: "Server admins: lift the ban of RANGE, as /bans lists it.",
        example: "/unbanip 203.0.113.0/24",
    },
    CommandInfo {
        name: "bans",
        aliases: &[],
        usage: "/bans [AFTER]",
        description: "Server admins: list the address bans in force, 200 at a time; AFTER: the last range shown, for the next ones.",
        example: "/bans",
    },
    CommandInfo {
        name: "suspend",
        aliases: &[],
        usage: "/suspend USER [DURATION] [REASON]",
        description: "Server admins: end USER's session and refuse its logins for DURATION (like 30m, 2h, 7d; a number alone is seconds), or until /unsuspend when none is given.",
        example: "/suspend mallory 7d spamming the lobby",
    },
    CommandInfo {
        name: "unsuspend",
        aliases: &[],
        usage: "/unsuspend USER",
        description: "Server admins: lift USER's suspension.",
        example: "/unsuspend mallory",
    },
    CommandInfo {
        name: "disconnect",
        aliases: &["kill"],
        usage: "/disconnect USER [REASON]",
        description: "Server admins: end USER's session now (USER may log in again).",
        example: "/disconnect mallory calm down",
    },
    CommandInfo {
        name: "registration",
        aliases: &[],
        usage: "/registration open|closed|invite",
        description: "Server admins: who may register new accounts: anyone, nobody, or whoever has an invite code (/invite).",
        example: "/registration invite",
    },
    CommandInfo {
        name: "invite",
        aliases: &[],
        usage: "/invite",
        description: "Server admins: make a single-use invite code that registers one new account within 7 days.",
        example: "/invite",
    },
    CommandInfo {
        name: "kick",
        aliases: &[],
        usage: "/kick [#ROOM] USER [REASON]",
        description: "Room owners and operators: remove USER from the room (the active one without #ROOM).",
        example: "/kick #rust bob flooding",
    },
    CommandInfo {
        name: "ban",
        aliases: &[],
        usage: "/ban [#ROOM] USER [DURATION] [REASON]",
        description: "Room owners and operators: ban USER from the room, for DURATION (90s, 30m, 2h, 7d, 1w; at most 365d) or for good.",
        example: "/ban #rust bob 2h spam",
    },
    CommandInfo {
        name: "unban",
        aliases: &[],
        usage: "/unban [#ROOM] USER",
        description: "Room owners and operators: lift USER's ban from the room.",
        example: "/unban #rust bob",
    },
    CommandInfo {
        name: "mute",
        aliases: &[],
        usage: "/mute [#ROOM] USER",
        description: "Room owners and operators: USER may no longer speak in the room.",
        example: "/mute #rust bob",
    },
    CommandInfo {
        name: "unmute",
        aliases: &[],
        usage: "/unmute [#ROOM] USER",
        description: "Room owners and operators: USER may speak in the room again.",
        example: "/unmute #rust bob",
    },
    CommandInfo {
        name: "op",
        aliases: &[],
        usage: "/op [#ROOM] USER",
        description: "Room owners: make USER an operator of the room.",
        example: "/op #rust carol",
    },
    CommandInfo {
        name: "deop",
        aliases: &[],
        usage: "/deop [#ROOM] USER",
        description: "Room owners: make operator USER a plain member again.",
        example: "/deop #rust carol",
    },
    CommandInfo {
        name: "lock-topic",
        aliases: &[],
        usage: "/lock-topic [#ROOM] on|off",
        description: "Room owners and operators: only operators may set the topic (on), or anyone (off).",
        example: "/lock-topic #rust on",
    },
    CommandInfo {
        name: "moderated",
        aliases: &[],
        usage: "/moderated [#ROOM] on|off",
        description: "Room owners and operators: only operators may speak in the room (on), or everyone (off).",
        example: "/moderated #rust on",
    },
    CommandInfo {
        name: "ignore",
        aliases: &[],
        usage: "/ignore [USER]",
        description: "Hide USER's public, room and direct messages on this client (kept for next time); alone, list who is ignored.",
        example: "/ignore bob",
    },
    CommandInfo {
        name: "unignore",
        aliases: &[],
        usage: "/unignore USER",
        description: "Show USER's messages again.",
        example: "/unignore bob",
    },
    CommandInfo {
        name: "quit",
        aliases: &["exit"],
        usage: "/quit [REASON]",
        description: "Leave the chat (also EX, Ctrl-D or the end of input).",
        example: "/quit see you tomorrow",
    },
    CommandInfo {
        name: "more",
        aliases: &[],
        usage: "/more",
        description: "Show the last message that was cut (a long one ends with \"... /more to read all\") whole.",
        example: "/more",
    },
    CommandInfo {
        name: "confirm",
        aliases: &[],
        usage: "/confirm [on|off]",
        description: "Show the server's confirmations (\"ok: ...\") of your messages, or not (on a terminal they are off: your messages show as chat).",
        example: "/confirm on",
    },
    CommandInfo {
        name: "connect",
        aliases: &[],
        usage: "/connect",
        description: "After the server went away: try to reconnect now instead of at the next retry.",
        example: "/connect",
    },
    CommandInfo {
        name: "help",
        aliases: &[],
        usage: "/help [COMMAND]",
        description: "List the commands, or show how to use one.",
        example: "/help msg",
    },
];

/// The command called `name` (or one of its aliases), ASCII case ignored,
/// with or without its leading slash.
pub fn find_command(name: &str) -> Option<&'static CommandInfo> {
    let name = name.strip_prefix('/').unwrap_or(name);
    COMMANDS.iter().find(|c| {
        c.name.eq_ignore_ascii_case(name) || c.aliases.iter().any(|a| a.eq_ignore_ascii_case(name))
    })
}

/// The lines `/help` shows: every command, or one command in detail.
pub fn help(topic: Option<&str>) -> Vec<String> {
    let Some(topic) = topic else {
        let mut lines = Vec::new();
        lines.push(
            "A plain line is a public message to everyone online, or after /join or /go #ROOM a message to that room."
                .to_string(),
        );
        lines.push(
            "/msg #ROOM TEXT sends to a room; /go alone sends plain lines to everyone online again."
                .to_string(),
        );
        lines.push("commands:".to_string());
        for c in COMMANDS {
            lines.push(format!("  {:<16} {}", c.usage, c.description));
        }
        lines.push("operations (alone on a line):".to_string());
        lines.push("  PM               send a public message (asks for the text)".to_string());
        lines.push(
            "  DM               send a direct message (shows who is online, asks for the recipient and text)"
                .to_string(),
        );
        lines.push("  EX               exit".to_string());
        lines.push(
            "/help COMMAND shows an example; /say PM sends the text \"PM\"; //text sends \"/text\"."
                .to_string(),
        );
        return lines;
    };
    // Upper case names the menu operation; anything else the command (so
    // `/help dm` is about `/dm`, `/help DM` about the DM flow).
    match topic.trim() {
        "PM" => {
            return alloc::vec![
                "PM: asks for a text and sends it to everyone online (so does any plain line)."
                    .to_string(),
            ];
        }
        "DM" => {
            return alloc::vec![
                "DM: shows who is online, asks for the recipient, then the text (or /msg USER TEXT)."
                    .to_string(),
            ];
        }
        "EX" => return alloc::vec!["EX: leaves the chat (or /quit).".to_string()],
        _ => {}
    }
    let Some(c) = find_command(topic.trim()) else {
        return alloc::vec![format!(
            "no command {}: /help lists them",
            crate::ui::sanitize(topic.trim())
        )];
    };
    let mut lines = alloc::vec![format!("{}  {}", c.usage, c.description)];
    if !c.aliases.is_empty() {
        let aliases: Vec<String> = c.aliases.iter().map(|a| format!("/{a}")).collect();
        lines.push(format!("  aliases: {}", aliases.join(", ")));
    }
    lines.push(format!("  example: {}", c.example));
    lines
}
