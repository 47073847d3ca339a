namespace EioSharp.Kv;

/// <summary>CLIENT TRACKING / CACHING / TRACKINGINFO / GETREDIR and the keys a tracking client reads (see <see cref="KvTracking"/>).</summary>
public sealed partial class KvConnectionState
{
    private KvTrackingClient? _tracking;
    private bool _cachingFlag; // CLIENT CACHING yes|no for the next command

    /// <summary>Whether CLIENT TRACKING is on for this connection.</summary>
    public bool IsTracking => _tracking is not null;

    private KvTracking Tracking => PubSub.Tracking;

    /// <summary>RESET and disconnect: tracking off.</summary>
    private void DisableTracking()
    {
        if (_tracking is null) return;
        Tracking.Disable(ClientId);
        _tracking = null;
        _cachingFlag = false;
    }

    /// <summary>Called for a command about to run (not queued): remembers the keys of a read-only command for a
    /// default-mode tracking client (Redis's trackingRememberKeys), EXEC's queued read commands included; then clears the
    /// CLIENT CACHING flag after a command other than CLIENT.</summary>
    private void TrackBeforeExecute(KvCommandInfo info, KvCommand command)
    {
        if (_tracking is not { } t) return;
        if (!t.Bcast && !((t.OptIn && !_cachingFlag) || (t.OptOut && _cachingFlag)))
        {
            if (info.Name == "exec" && _transaction is { } tx)
            {
                foreach (KvCommand queued in tx.Commands) Remember(queued);
            }
            else Remember(command);
        }
        // As Redis's resetClient: any CLIENT command (CACHING itself, TRACKINGINFO...) and MULTI keep the flag.
        if (info.Id != KvCommandId.Client && _transaction is null) _cachingFlag = false;
    }

    private void Remember(KvCommand command)
    {
        if (KvRedisCommands.Lookup(command) is not { } spec || !spec.Flags.Contains("readonly") || spec.KeySpecs.Length == 0) return;
        List<(int Position, KeySpecFlags Flags)> keys = KvRedisCommands.GetKeys(spec, command, AclKeyFinder);
        if (keys.Count > 0) Tracking.Remember(ClientId, keys.Select(k => command.ToArray(k.Position)));
    }

    /// <summary>CLIENT TRACKING|CACHING|TRACKINGINFO|GETREDIR; false for other subcommands.</summary>
    private bool TryTrackingSubcommand(KvCommand command, RespWriter reply)
    {
        ReadOnlySpan<byte> sub = command[1];
        if (Is(sub, "TRACKING"u8)) ClientTracking(command, reply);
        else if (Is(sub, "CACHING"u8)) ClientCaching(command, reply);
        else if (Is(sub, "GETREDIR"u8))
        {
            if (command.Count != 2) reply.WriteError(KvErrors.WrongArity("client|getredir"));
            else reply.WriteInteger(_tracking?.Redirect ?? -1);
        }
        else if (Is(sub, "TRACKINGINFO"u8))
        {
            if (command.Count != 2)
            {
                reply.WriteError(KvErrors.WrongArity("client|trackinginfo"));
                return true;
            }
            reply.WriteMapHeader(3);
            reply.WriteBulkString("flags");
            var flags = new List<string>();
            if (_tracking is not { } t) flags.Add("off");
            else
            {
                flags.Add("on");
                if (t.Bcast) flags.Add("bcast");
                if (t.OptIn)
                {
                    flags.Add("optin");
                    if (_cachingFlag) flags.Add("caching-yes");
                }
                if (t.OptOut)
                {
                    flags.Add("optout");
                    if (_cachingFlag) flags.Add("caching-no");
                }
                if (t.NoLoop) flags.Add("noloop");
                if (t.Redirect != 0 && Tracking.ResolveClient?.Invoke(t.Redirect) is null) flags.Add("broken_redirect");
            }
            reply.WriteSetHeader(flags.Count);
            foreach (string f in flags) reply.WriteBulkString(f);
            reply.WriteBulkString("redirect");
            reply.WriteInteger(_tracking is { } tr ? tr.Redirect : -1);
            reply.WriteBulkString("prefixes");
            List<byte[]> prefixes = _tracking?.Prefixes ?? [];
            reply.WriteArrayHeader(prefixes.Count);
            foreach (byte[] p in prefixes) reply.WriteBulkString(p);
        }
        else return false;
        return true;
    }

    private void ClientTracking(KvCommand command, RespWriter reply)
    {
        if (command.Count < 3)
        {
            reply.WriteError(KvErrors.WrongArity("client|tracking"));
            return;
        }
        long redirect = 0;
        bool bcast = false, optIn = false, optOut = false, noLoop = false;
        var prefixes = new List<byte[]>();
        for (int j = 3; j < command.Count; j++)
        {
            bool more = command.Count - 1 - j > 0;
            if (Is(command[j], "REDIRECT"u8) && more)
            {
                j++;
                if (redirect != 0)
                {
                    reply.WriteError("ERR A client can only redirect to a single other client");
                    return;
                }
                if (!RespNumbers.TryParseInt64(command[j], out redirect))
                {
                    reply.WriteError(KvErrors.NotInteger);
                    return;
                }
                if (redirect != ClientId && Tracking.ResolveClient?.Invoke(redirect) is null)
                {
                    reply.WriteError("ERR The client ID you want redirect to does not exist");
                    return;
                }
            }
            else if (Is(command[j], "BCAST"u8)) bcast = true;
            else if (Is(command[j], "OPTIN"u8)) optIn = true;
            else if (Is(command[j], "OPTOUT"u8)) optOut = true;
            else if (Is(command[j], "NOLOOP"u8)) noLoop = true;
            else if (Is(command[j], "PREFIX"u8) && more)
            {
                j++;
                prefixes.Add(command.ToArray(j));
            }
            else
            {
                reply.WriteError(KvErrors.Syntax);
                return;
            }
        }
        if (Is(command[2], "ON"u8))
        {
            if (!bcast && prefixes.Count > 0)
            {
                reply.WriteError("ERR PREFIX option requires BCAST mode to be enabled");
                return;
            }
            if (_tracking is { } old && old.Bcast != bcast)
            {
                reply.WriteError("ERR You can't switch BCAST mode on/off before disabling tracking for this client, and then re-enabling it with a different mode.");
                return;
            }
            if (bcast && (optIn || optOut))
            {
                reply.WriteError("ERR OPTIN and OPTOUT are not compatible with BCAST");
                return;
            }
            if (optIn && optOut)
            {
                reply.WriteError("ERR You can't specify both OPTIN mode and OPTOUT mode");
                return;
            }
            if (_tracking is { } cur && ((optIn && cur.OptOut) || (optOut && cur.OptIn)))
            {
                reply.WriteError("ERR You can't switch OPTIN/OPTOUT mode before disabling tracking for this client, and then re-enabling it with a different mode.");
                return;
            }
            if (bcast && CheckPrefixCollisions(prefixes) is { } collision)
            {
                reply.WriteError(collision);
                return;
            }
            EnsureSubscriber();
            // As Redis's enableTracking: options are added to the current ones (prefixes too); BCAST without a prefix is "".
            List<byte[]> all = [.. _tracking?.Prefixes ?? []];
            if (bcast && prefixes.Count == 0 && all.Count == 0) prefixes.Add([]);
            foreach (byte[] p in prefixes) if (!all.Any(x => x.AsSpan().SequenceEqual(p))) all.Add(p);
            _tracking = new KvTrackingClient
            {
                ClientId = ClientId, Self = this, Redirect = redirect, Bcast = bcast,
                OptIn = optIn || (_tracking?.OptIn ?? false), OptOut = optOut || (_tracking?.OptOut ?? false),
                NoLoop = noLoop || (_tracking?.NoLoop ?? false), Prefixes = all,
            };
            Tracking.Enable(_tracking);
        }
        else if (Is(command[2], "OFF"u8)) DisableTracking();
        else
        {
            reply.WriteError(KvErrors.Syntax);
            return;
        }
        reply.WriteOk();
    }

    /// <summary>Redis's checkPrefixCollisionsOrReply: a new prefix may not be a prefix of another (given or existing).</summary>
    private string? CheckPrefixCollisions(List<byte[]> prefixes)
    {
        static string S(byte[] b) => System.Text.Encoding.UTF8.GetString(b);
        for (int i = 0; i < prefixes.Count; i++)
        {
            foreach (byte[] existing in _tracking?.Prefixes ?? [])
            {
                if (existing.AsSpan().StartsWith(prefixes[i]) || prefixes[i].AsSpan().StartsWith(existing))
                {
                    if (existing.AsSpan().SequenceEqual(prefixes[i])) continue;
                    return $"ERR Prefix '{S(prefixes[i])}' overlaps with an existing prefix '{S(existing)}'. Prefixes for a single client must not overlap.";
                }
            }
            for (int j = i + 1; j < prefixes.Count; j++)
            {
                if (prefixes[i].AsSpan().StartsWith(prefixes[j]) || prefixes[j].AsSpan().StartsWith(prefixes[i]))
                    return $"ERR Prefix '{S(prefixes[i])}' overlaps with another provided prefix '{S(prefixes[j])}'. Prefixes for a single client must not overlap.";
            }
        }
        return null;
    }

    private void ClientCaching(KvCommand command, RespWriter reply)
    {
        if (command.Count != 3)
        {
            reply.WriteError(KvErrors.WrongArity("client|caching"));
            return;
        }
        if (_tracking is not { } t)
        {
            reply.WriteError("ERR CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or OPTOUT mode enabled");
            return;
        }
        if (Is(command[2], "YES"u8))
        {
            if (!t.OptIn)
            {
                reply.WriteError("ERR CLIENT CACHING YES is only valid when tracking is enabled in OPTIN mode.");
                return;
            }
        }
        else if (Is(command[2], "NO"u8))
        {
            if (!t.OptOut)
            {
                reply.WriteError("ERR CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode.");
                return;
            }
        }
        else
        {
            reply.WriteError(KvErrors.Syntax);
            return;
        }
        _cachingFlag = true;
        reply.WriteOk();
    }
}
