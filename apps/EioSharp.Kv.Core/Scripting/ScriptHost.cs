using System.Buffers;
using System.Collections.Frozen;
using System.Globalization;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using KeraLua;
using static EioSharp.Kv.Scripting.LuaNative;

namespace EioSharp.Kv.Scripting;

/// <summary>The store's scripting: the EVAL script cache and its Lua state, the FUNCTION libraries and theirs, and the
/// bridge <c>redis.call</c> uses to run commands through <see cref="KvStore.Execute(KvSession, KvCommand, long, RespWriter, IAofSink)"/>.</summary>
/// <remarks><b>Thread safety</b>: none; the store owner only (a script runs inside one store command, so it is atomic).</remarks>
internal sealed partial class ScriptHost : IDisposable
{
    private const int MaxReplyDepth = 1000; // deeper Lua tables (or a table containing itself) end in "reached lua stack limit"
    private const int FunctionLoadTimeoutMs = 500; // Redis's LOAD_TIMEOUT_MS for FUNCTION LOAD
    private const string KilledError = "Script killed by user with SCRIPT KILL...";

    private readonly KvStore _store;
    private readonly Dictionary<string, CachedScript> _scripts = new(StringComparer.Ordinal);
    private readonly ArrayBufferWriter<byte> _callReply = new(1024);
    private readonly RespWriter _callWriter; // over _callReply; its protocol set per call (redis.setresp)
    private readonly EffectCapture _capture = new(); // the running script's effects (Run), reused
    private LuaSandbox? _eval;
    private LuaSandbox? _functions;
    private RunContext? _run;
    private LoadContext? _loading;
    private ulong _rand48 = (0UL << 16) | 0x330E; // Redis's redisSrand48(0)

    private readonly Func<string?> _hookCheck; // the count hook's decision (LuaSandbox.HookCheck), one delegate
    private GCHandle _self; // weak: the upvalue of redis.call/pcall (PushCallFunctions)

    public ScriptHost(KvStore store)
    {
        _store = store;
        _hookCheck = CountHookCheck;
        _callWriter = new RespWriter(_callReply);
    }

    /// <summary>Where <c>redis.log</c> lines go; null: standard error.</summary>
    public Action<string>? Log { get; set; }

    /// <summary>Number of cached EVAL scripts.</summary>
    public int ScriptCount => _scripts.Count;

    /// <summary>Bytes of the cached EVAL scripts' bodies, plus 48 per script (MEMORY STATS lua.caches).</summary>
    public long ScriptCacheBytes
    {
        get
        {
            long n = 0;
            foreach (CachedScript s in _scripts.Values) n += s.Body.Length + 48;
            return n;
        }
    }

    private KvScriptMonitor Monitor => _store.ScriptMonitor;

    // MayLoop: the script's code may loop (LuaBytecode.MayLoop): it runs with the count hook; false: without one unless
    // it compiles code at run time (LuaSandbox.SetHookOnDemand).
    private sealed record CachedScript(byte[] Body, int Ref, bool HasFlags, bool NoWrites, bool AllowOom, bool MayLoop);

    /// <summary>The running script's state; one instance, reused by every script (scripts do not nest).</summary>
    private sealed class RunContext
    {
        public readonly KvSession Session = new(); // the script's own session (its SELECTs), database set per script
        public KvSession? Caller; // the client's session: its connection's ACL user
        public long Now;
        public bool ReadOnly;
        public bool IsEval;
        public string Name = "";
        public LuaSandbox? Sandbox;
        public IAofSink? Capture;
        public int Resp;
        public int Repl;
        public bool Killed;
        public bool AllowOom; // the allow-oom flag (shebang, function flags): denyoom commands run even over maxmemory
        public bool WriteDirty; // a write command was called (Redis's SCRIPT_WRITE_DIRTY): from then on no -OOM
        public bool AclUnrestricted; // the caller's user may run anything: redis.call skips the per-call ACL check

        /// <summary>Sets every field for a new script run.</summary>
        public void Begin(KvSession caller, long now, bool readOnly, bool isEval, string name, LuaSandbox sandbox, IAofSink? capture, bool allowOom)
        {
            Session.Db = caller.Db;
            Session.NoBlock = false;
            Caller = caller;
            Now = now;
            ReadOnly = readOnly;
            IsEval = isEval;
            Name = name;
            Sandbox = sandbox;
            Capture = capture;
            Resp = 2;
            Repl = 3; // REPL_ALL
            Killed = false;
            AllowOom = allowOom;
            WriteDirty = false;
            AclUnrestricted = KvConnectionState.ScriptAclUnrestricted(caller);
        }

        /// <summary>Drops the references to the caller and the sandbox once the script is done.</summary>
        public void End()
        {
            Caller = null;
            Sandbox = null;
            Capture = null;
        }
    }

    private readonly RunContext _runContext = new();

    // ------------------------------------------------------------------ EVAL

    private LuaSandbox EvalSandbox => _eval ??= CreateSandbox("@user_script", forFunctions: false);

    /// <summary>SHA1 of <paramref name="body"/> in lower-case hex (Redis's script id).</summary>
    public static string Sha1Hex(ReadOnlySpan<byte> body) => Convert.ToHexStringLower(SHA1.HashData(body));

    /// <summary>Compiles and caches a script (SCRIPT LOAD, EVAL); returns the error reply text or null.</summary>
    public string? LoadScript(ReadOnlySpan<byte> body, out string sha)
    {
        sha = Sha1Hex(body);
        if (_scripts.ContainsKey(sha)) return null;
        string? error = ParseShebang(body, out int shebangLength, out bool hasFlags, out bool noWrites, out bool allowOom);
        if (error is not null) return error;
        LuaSandbox sb = EvalSandbox;
        using LuaSandbox.HostScope host = sb.Host();
        error = sb.Compile(body[shebangLength..]);
        if (error is not null) return "ERR Error compiling script (new function): " + error;
        bool mayLoop = sb.TopMayLoop();
        int reference = sb.State.Ref(LuaRegistry.Index);
        _scripts[sha] = new CachedScript(body.ToArray(), reference, hasFlags, noWrites, allowOom, mayLoop);
        return null;
    }

    /// <summary>Whether a script with this SHA1 is cached (SCRIPT EXISTS).</summary>
    public bool ScriptExists(string sha) => _scripts.ContainsKey(sha.ToLowerInvariant());

    /// <summary>Forgets every cached script and the EVAL Lua state (SCRIPT FLUSH).</summary>
    public void FlushScripts()
    {
        _scripts.Clear();
        _lastSha = null;
        _lastScript = null;
        _eval?.Dispose();
        _eval = null;
    }

    // The script the last EVALSHA found, and its SHA1 (lower case): a client calling one script over and over skips the
    // cache's hashing of the 40-character digest. Cleared with the cache (SCRIPT FLUSH; nothing else removes scripts).
    private string? _lastSha;
    private CachedScript? _lastScript;

    /// <summary>EVAL / EVALSHA / EVAL_RO / EVALSHA_RO.</summary>
    public void Eval(in KvStore.Context ctx, bool bySha, bool readOnlyCommand)
    {
        if (!TryParseKeyCount(ctx, 2, functions: false, out int numKeys)) return;
        string sha;
        CachedScript? script;
        if (bySha)
        {
            // The script of the previous EVALSHA when the digest is its SHA1 (any case); else looked up by the lower-cased
            // digest without building a string per call (the cache's keys are lower case).
            ReadOnlySpan<byte> digest = ctx[1];
            if (_lastSha is not null && Ascii.EqualsIgnoreCase(digest, _lastSha))
            {
                sha = _lastSha;
                script = _lastScript!;
            }
            else
            {
                Span<char> lower = stackalloc char[40];
                if (digest.Length != 40 || Ascii.ToLower(digest, lower, out _) != System.Buffers.OperationStatus.Done
                    || !_scripts.GetAlternateLookup<ReadOnlySpan<char>>().TryGetValue(lower, out sha!, out script))
                {
                    ctx.Reply.WriteError("NOSCRIPT No matching script. Please use EVAL.");
                    return;
                }
                _lastSha = sha;
                _lastScript = script;
            }
        }
        else
        {
            string? error = LoadScript(ctx[1], out sha);
            if (error is not null)
            {
                ctx.Reply.WriteError(error);
                return;
            }
            script = _scripts[sha];
        }
        if (readOnlyCommand && script.HasFlags && !script.NoWrites)
        {
            ctx.Reply.WriteError("ERR Can not execute a script with write flag using *_ro command.");
            return;
        }
        Run(ctx, EvalSandbox, script.Ref, numKeys, isEval: true, sha, readOnlyCommand || script.NoWrites, script.AllowOom, script.MayLoop);
    }

    /// <summary>Whether an EVAL/EVALSHA/FCALL (and _RO) command is denyoom (Redis's evalGetCommandFlags and
    /// fcallGetCommandFlags): a script with declared flags is, unless it has allow-oom or no-writes; a script without
    /// a shebang (compatibility mode), an unknown SHA or function, or a body that does not parse, is not.</summary>
    public bool IsWriteScript(KvCommand command, string name)
    {
        if (!TryGetScriptFlags(command, name, out bool hasFlags, out bool noWrites, out _)) return false;
        return hasFlags && !noWrites;
    }

    private bool TryGetScriptFlags(KvCommand command, string name, out bool hasFlags, out bool noWrites, out bool allowOom)
    {
        hasFlags = noWrites = allowOom = false;
        if (command.Count < 2) return false;
        if (name is "fcall" or "fcall_ro")
        {
            if (!_functionsByName.TryGetValue(Encoding.UTF8.GetString(command[1]), out LuaFunctionEntry? f)) return false;
            (hasFlags, noWrites, allowOom) = (true, f.NoWrites, f.Flags.Contains("allow-oom"));
            return true;
        }
        bool bySha = name is "evalsha" or "evalsha_ro";
        if (bySha && command[1].Length != 40) return false;
        string sha = bySha ? Encoding.ASCII.GetString(command[1]).ToLowerInvariant() : Sha1Hex(command[1]);
        if (_scripts.TryGetValue(sha, out CachedScript? cached))
        {
            (hasFlags, noWrites, allowOom) = (cached.HasFlags, cached.NoWrites, cached.AllowOom);
            return true;
        }
        return !bySha && ParseShebang(command[1], out _, out hasFlags, out noWrites, out allowOom) is null;
    }

    public bool DeniesOom(KvCommand command, string name)
    {
        if (command.Count < 2) return false;
        bool hasFlags, noWrites, allowOom;
        if (name is "fcall" or "fcall_ro")
        {
            if (!_functionsByName.TryGetValue(Encoding.UTF8.GetString(command[1]), out LuaFunctionEntry? f)) return false;
            return !f.NoWrites && !f.Flags.Contains("allow-oom");
        }
        bool bySha = name is "evalsha" or "evalsha_ro";
        if (bySha && command[1].Length != 40) return false;
        string sha = bySha ? Encoding.ASCII.GetString(command[1]).ToLowerInvariant() : Sha1Hex(command[1]);
        if (_scripts.TryGetValue(sha, out CachedScript? cached))
        {
            (hasFlags, noWrites, allowOom) = (cached.HasFlags, cached.NoWrites, cached.AllowOom);
        }
        else
        {
            if (bySha || ParseShebang(command[1], out _, out hasFlags, out noWrites, out allowOom) is not null) return false;
        }
        return hasFlags && !noWrites && !allowOom;
    }

    /// <summary>Parses <c>#!lua [flags=a,b]</c> at the start of an EVAL script.</summary>
    private static string? ParseShebang(ReadOnlySpan<byte> body, out int length, out bool hasFlags, out bool noWrites, out bool allowOom)
    {
        length = 0;
        hasFlags = false;
        noWrites = false;
        allowOom = false;
        if (!body.StartsWith("#!"u8)) return null;
        int end = body.IndexOf((byte)'\n');
        if (end < 0) end = body.Length;
        length = end; // keep the newline so line numbers stay those of the source
        string[] parts = Encoding.UTF8.GetString(body[2..end]).Split(' ', StringSplitOptions.RemoveEmptyEntries);
        if (parts.Length == 0 || parts[0] != "lua") return $"ERR Unexpected engine in script shebang: {(parts.Length == 0 ? "" : parts[0])}";
        hasFlags = true;
        foreach (string part in parts.AsSpan(1))
        {
            if (!part.StartsWith("flags=", StringComparison.Ordinal)) return $"ERR Unknown lua shebang option: {part}";
            foreach (string flag in part[6..].Split(',', StringSplitOptions.RemoveEmptyEntries))
            {
                if (flag == "no-writes") noWrites = true;
                else if (flag == "allow-oom") allowOom = true;
                else if (flag is not ( "allow-stale" or "no-cluster" or "allow-cross-slot-keys")) return $"ERR Unexpected flag in script shebang: {flag}";
            }
        }
        return null;
    }

    private static bool TryParseKeyCount(in KvStore.Context ctx, int index, bool functions, out int numKeys)
    {
        numKeys = 0;
        if (!RespNumbers.TryParseInt64(ctx[index], out long n))
        {
            ctx.Reply.WriteError(functions ? "ERR Bad number of keys provided" : KvErrors.NotInteger);
            return false;
        }
        if (n < 0)
        {
            ctx.Reply.WriteError("ERR Number of keys can't be negative");
            return false;
        }
        if (n > ctx.Count - index - 1)
        {
            ctx.Reply.WriteError("ERR Number of keys can't be greater than number of args");
            return false;
        }
        numKeys = (int)n;
        return true;
    }

    // ------------------------------------------------------------------ running

    /// <summary>Runs the function in registry slot <paramref name="reference"/> with the keys and arguments after
    /// argument <c>2</c> (numkeys) and writes its converted result, or its error, as the reply.</summary>
    /// <remarks>The count hook (busy-reply-threshold, SCRIPT KILL) is installed for the run when the function may loop
    /// (<paramref name="mayLoop"/>); a straight-line script executes each of its instructions at most once and can reach
    /// no function that loops except through code it compiles (load, loadstring: they install the hook first), since no
    /// script can leave a function behind for another (the globals, libraries and string metatable are read-only, rawset
    /// included). Redis's hook fires every 100,000 instructions; such a script never reaches that many of its own.</remarks>
    private void Run(in KvStore.Context ctx, LuaSandbox sb, int reference, int numKeys, bool isEval, string name, bool readOnly, bool allowOom, bool mayLoop = true)
    {
        Lua l = sb.State;
        int top = lua_gettop(l.Handle);
        LuaSandbox.HostScope host = sb.Host(); // the pushes before the protected call: no allocation fails
        sb.PushErrorHandler();
        int handler = top + 1;
        sb.PushRegistry(reference);
        int nargs = 2;
        if (isEval)
        {
            // KEYS and ARGV set straight into the real globals, their names pushed from the registry (no string hashed
            // or interned, no stack rotations per call); the previous call's tables refilled when they are as new.
            sb.PushRealGlobals();
            sb.SetArgumentsGlobal(argv: false, ctx.Command, 3, numKeys);
            sb.SetArgumentsGlobal(argv: true, ctx.Command, 3 + numKeys, ctx.Count - 3 - numKeys);
            lua_settop(l.Handle, -2); // pops the globals
            nargs = 0;
        }
        else
        {
            PushArgs(l, ctx, 3, numKeys);
            PushArgs(l, ctx, 3 + numKeys, ctx.Count - 3 - numKeys);
        }
        host.Dispose();
        EffectCapture? capture = null;
        if (ctx.Aof is not null)
        {
            capture = _capture; // scripts do not nest (EVAL/FCALL are refused inside one): one capture for every call
            capture.Clear();
        }
        int aofDbBefore = ctx.Aof is null ? -1 : _store.AofDatabase(ctx.Aof);
        RunContext run = _runContext;
        run.Begin(ctx.Session, ctx.Now, readOnly, isEval, name, sb, capture, allowOom);
        _run = run;
        Monitor.Started(isEval);
        if (mayLoop) sb.SetHook(true);
        else sb.SetHookOnDemand();
        LuaStatus status;
        try
        {
            status = l.PCall(nargs, 1, handler);
        }
        finally
        {
            sb.CheckNoCallbackUnwound();
            sb.ClearHook();
            Monitor.Ended();
            _run = null;
        }
        int resp = run.Resp;
        run.End();
        host = sb.Host(); // converting the result, dropping KEYS/ARGV: no allocation fails
        if (status == LuaStatus.OK)
        {
            WriteReply(l, ctx.Reply, resp, 0);
        }
        else
        {
            WriteErrorReply(l, ctx.Reply, name);
        }
        lua_settop(l.Handle, top);
        if (isEval && ArgumentBytes(ctx, 3) > KeepArgumentsMax)
        {
            // KEYS and ARGV stay set until the next script, as in Redis (the next EVAL replaces both before its body
            // runs, so no script sees another's); large ones are dropped at once so that their memory is not held.
            l.PushNil();
            sb.SetRealGlobal("KEYS"u8);
            l.PushNil();
            sb.SetRealGlobal("ARGV"u8);
        }
        host.Dispose();
        if (status != LuaStatus.OK || sb.MemoryUsed > sb.MemoryLimit / 2) l.GarbageCollector(LuaGC.Collect, 0);
        if (capture is not null)
        {
            Propagate(ctx, capture, aofDbBefore);
            capture.Clear();
        }
    }

    /// <summary>The EVAL sandbox's memory cap in bytes (tests: a small one makes callbacks cross it).</summary>
    internal long EvalMemoryLimit
    {
        get => EvalSandbox.MemoryLimit;
        set => EvalSandbox.MemoryLimit = value;
    }

    /// <summary>Bytes the EVAL sandbox holds now (tests).</summary>
    internal long EvalMemoryUsed => EvalSandbox.MemoryUsed;

    /// <summary>Whether the EVAL sandbox has a hook installed now (tests: none is left after a script).</summary>
    internal bool EvalHookSet => _eval is not null && _eval.HookSet;

    /// <summary>Whether the EVAL sandbox still holds the last script's ARGV (tests: small ones are kept, large ones
    /// dropped).</summary>
    internal bool EvalArgumentsHeld => _eval is not null && _eval.HasRealGlobal("ARGV"u8);

    /// <summary>KEYS and ARGV tables the EVAL sandbox refilled instead of making new ones (tests).</summary>
    internal long EvalReusedArgumentTables => _eval?.ReusedArgumentTables ?? 0;

    // KEYS and ARGV of at most this many bytes in all are left set after an EVAL (two table stores fewer per call).
    private const int KeepArgumentsMax = 4096;

    private static long ArgumentBytes(in KvStore.Context ctx, int first)
    {
        long bytes = 0;
        for (int i = first; i < ctx.Count; i++) bytes += ctx[i].Length;
        return bytes;
    }

    /// <summary>Logs a script's effects: each write by its own command, wrapped in MULTI/EXEC when there are several
    /// (Redis 7), so that replaying the AOF needs no Lua.</summary>
    private void Propagate(in KvStore.Context ctx, EffectCapture effects, int aofDbBefore)
    {
        IAofSink aof = ctx.Aof!;
        _store.RestoreAofDatabase(aof, aofDbBefore);
        int writes = 0;
        for (int i = 0; i < effects.Count; i++) if (effects.SelectDb(i) < 0) writes++;
        if (writes == 0) return;
        int first = 0;
        if (writes > 1 && effects.SelectDb(0) >= 0) LogEffect(aof, effects, first++);
        if (writes > 1) LogWrapper(aof, s_multi, "*1\r\n$5\r\nMULTI\r\n"u8);
        for (int i = first; i < effects.Count; i++) LogEffect(aof, effects, i);
        if (writes > 1) LogWrapper(aof, s_exec, "*1\r\n$4\r\nEXEC\r\n"u8);
    }

    /// <summary>Logs the MULTI or EXEC around a script's effects: its constant encoding copied into the server's AOF buffer
    /// (no formatting per script call), or the command for another sink. Neither is a SELECT, so the AOF's database
    /// (<see cref="KvStore.AofDatabase"/>, current for this sink since <see cref="Propagate"/> began) stays as it is.</summary>
    private void LogWrapper(IAofSink aof, KvCommand command, ReadOnlySpan<byte> encoded)
    {
        if (aof is AofBufferSink buffer) buffer.AppendEncoded(encoded);
        else _store.LogRaw(aof, command);
    }

    /// <summary>Logs effect <paramref name="i"/>: its encoded bytes as they are into the server's AOF buffer (a SELECT
    /// only when the AOF is not in that database already), or decoded again for another sink.</summary>
    private void LogEffect(IAofSink aof, EffectCapture effects, int i)
    {
        if (aof is not AofBufferSink buffer)
        {
            _store.LogRaw(aof, effects.Decode(i));
            return;
        }
        int db = effects.SelectDb(i);
        if (db >= 0)
        {
            if (_store.AofDatabase(aof) == db) return; // already there
            _store.RestoreAofDatabase(aof, db);
        }
        buffer.AppendEncoded(effects.Encoded(i));
    }

    /// <summary>The running script's effects, encoded in AOF form into one reused buffer as the store logs them (no copy
    /// of the command per write), with which of them are SELECTs.</summary>
    private sealed class EffectCapture : IAofSink
    {
        private ArrayBufferWriter<byte> _bytes = new(256);
        private readonly List<(int Start, int Length, int SelectDb)> _commands = [];

        public int Count => _commands.Count;

        public void Append(KvCommand command)
        {
            int start = _bytes.WrittenCount;
            AofWriter.WriteCommand(_bytes, command);
            int db = -1;
            if (command.Count == 2 && Ascii.EqualsIgnoreCase(command[0], "SELECT"u8) && RespNumbers.TryParseInt64(command[1], out long d)) db = (int)d;
            _commands.Add((start, _bytes.WrittenCount - start, db));
        }

        /// <summary>The database effect <paramref name="i"/> SELECTs, or -1 when it is a write.</summary>
        public int SelectDb(int i) => _commands[i].SelectDb;

        public ReadOnlySpan<byte> Encoded(int i) => _bytes.WrittenSpan.Slice(_commands[i].Start, _commands[i].Length);

        /// <summary>Effect <paramref name="i"/> as a command again (<c>*N</c> then N bulk strings, as encoded).</summary>
        public KvCommand Decode(int i)
        {
            ReadOnlySpan<byte> s = Encoded(i);
            int pos = 1;
            int count = ReadNumber(s, ref pos);
            var args = new byte[count][];
            for (int a = 0; a < count; a++)
            {
                pos++; // '$'
                int length = ReadNumber(s, ref pos);
                args[a] = s.Slice(pos, length).ToArray();
                pos += length + 2;
            }
            return KvCommand.Create(args);
        }

        private static int ReadNumber(ReadOnlySpan<byte> s, ref int pos)
        {
            int end = s[pos..].IndexOf((byte)'\r') + pos;
            int n = int.Parse(s[pos..end], NumberStyles.None, CultureInfo.InvariantCulture);
            pos = end + 2;
            return n;
        }

        /// <summary>Forgets the effects (the buffer is kept unless a large script made it large).</summary>
        public void Clear()
        {
            _commands.Clear();
            if (_commands.Capacity > 1024) _commands.Capacity = 16;
            if (_bytes.Capacity > 1 << 20) _bytes = new ArrayBufferWriter<byte>(256); // a script that wrote a big value
            else _bytes.ResetWrittenCount();
        }
    }

    private static readonly KvCommand s_multi = KvCommand.Create("MULTI"u8.ToArray()), s_exec = KvCommand.Create("EXEC"u8.ToArray()); // read only

    private static unsafe void PushArgs(Lua l, in KvStore.Context ctx, int first, int count)
    {
        l.CreateTable(count, 0);
        for (int i = 0; i < count; i++)
        {
            fixed (byte* p = ctx.Command[first + i]) lua_pushlstring(l.Handle, p, (UIntPtr)ctx.Command[first + i].Length); // copied by Lua
            l.RawSetInteger(-2, i + 1);
        }
    }

    /// <summary>The count hook's decision (every 100,000 instructions, and every line after a kill): the error that
    /// stops the script, or null. It does not raise: the sandbox's Lua hook function raises what it returns.</summary>
    private string? CountHookCheck()
    {
        if (_loading is not null && Environment.TickCount64 - _loading.StartTicks > FunctionLoadTimeoutMs) return "FUNCTION LOAD timeout";
        RunContext? run = _run;
        if (run is null) return null;
        // Past busy-reply-threshold: let the connections sharing this thread answer -BUSY (or take a SCRIPT KILL)
        // before deciding whether to go on (Redis's processEventsWhileBlocked from its script hook).
        if (!run.Killed && Monitor.IsBusy) Monitor.ProcessEventsWhileBusy();
        if (!(run.Killed || Monitor.KillRequested)) return null;
        run.Killed = true;
        // Stop on every line from now on, so that a pcall in the script cannot catch the kill and go on.
        run.Sandbox!.SetLineHook();
        return KilledError;
    }

    /// <summary>Writes the error a failed script left on the stack (Redis 7.0's luaCallFunction).</summary>
    private static void WriteErrorReply(Lua l, RespWriter reply, string name)
    {
        if (l.Type(-1) != LuaType.Table)
        {
            string msg = l.Type(-1) is LuaType.String or LuaType.Number ? l.ToString(-1) ?? "" : "execution failure";
            if (msg.Length > 100) msg = msg[..100];
            reply.WriteError($"ERR Error running script {name}, {msg}");
            return;
        }
        string err = GetStringField(l, "err") ?? "";
        string? source = GetStringField(l, "source");
        string? line = GetStringField(l, "line");
        string text = err;
        if (source is not null && line is not null) text += $" script: {name}, on {source}:{line}.";
        reply.WriteError(text);
    }

    private static string? GetStringField(Lua l, string field)
    {
        l.PushString(field);
        l.RawGet(-2);
        string? s = l.Type(-1) is LuaType.String or LuaType.Number ? Encoding.UTF8.GetString(l.ToBuffer(-1) ?? []) : null;
        l.Pop(1);
        return s;
    }

    // ------------------------------------------------------------------ Lua -> RESP

    /// <summary>Converts the Lua value on top of the stack to a reply (Redis 7.0's luaReplyToRedisReply); pops nothing.</summary>
    private static void WriteReply(Lua l, RespWriter w, int scriptResp, int depth)
    {
        if (depth > MaxReplyDepth || !l.CheckStack(4))
        {
            w.WriteError("ERR reached lua stack limit");
            return;
        }
        switch ((LuaType)lua_type(l.Handle, -1))
        {
            case LuaType.String:
                w.WriteBulkString(LuaSandbox.StringSpan(l, -1)); // written before anything pops the string
                return;
            case LuaType.Boolean:
                if (scriptResp == 2)
                {
                    if (l.ToBoolean(-1)) w.WriteInteger(1);
                    else w.WriteNull();
                }
                else
                {
                    w.WriteBoolean(l.ToBoolean(-1));
                }
                return;
            case LuaType.Number:
                w.WriteInteger(ToInt64(l, -1));
                return;
            case LuaType.Table:
                break;
            default:
                w.WriteNull();
                return;
        }

        if (RawField(l, "err") == LuaType.String)
        {
            string err = Encoding.UTF8.GetString(l.ToBuffer(-1, false) ?? []);
            l.Pop(1);
            w.WriteError(err);
            return;
        }
        l.Pop(1);
        if (RawField(l, "ok") == LuaType.String)
        {
            w.WriteSimpleString(l.ToBuffer(-1, false) ?? []);
            l.Pop(1);
            return;
        }
        l.Pop(1);
        if (RawField(l, "double") == LuaType.Number)
        {
            w.WriteDouble(l.ToNumber(-1));
            l.Pop(1);
            return;
        }
        l.Pop(1);
        if (RawField(l, "big_number") == LuaType.String)
        {
            string big = Encoding.UTF8.GetString(l.ToBuffer(-1, false) ?? []).Replace('\r', ' ').Replace('\n', ' ');
            if (w.IsResp3) w.WriteRaw(Encoding.UTF8.GetBytes("(" + big + "\r\n"));
            else w.WriteBulkString(big);
            l.Pop(1);
            return;
        }
        l.Pop(1);
        if (RawField(l, "verbatim_string") == LuaType.Table)
        {
            if (RawField(l, "format") == LuaType.String)
            {
                string format = l.ToString(-1) ?? "txt";
                l.Pop(1);
                if (RawField(l, "string") == LuaType.String)
                {
                    byte[] s = l.ToBuffer(-1, false) ?? [];
                    l.Pop(2);
                    WriteVerbatim(w, format, s);
                    return;
                }
                l.Pop(1);
            }
            else
            {
                l.Pop(1);
            }
        }
        l.Pop(1);
        if (RawField(l, "map") == LuaType.Table)
        {
            int pairs = 0;
            l.PushNil();
            while (l.Next(-2))
            {
                pairs++;
                l.Pop(1);
            }
            w.WriteMapHeader(pairs);
            l.PushNil();
            while (l.Next(-2))
            {
                l.PushCopy(-2);
                WriteReply(l, w, scriptResp, depth + 1); // key
                l.Pop(1);
                WriteReply(l, w, scriptResp, depth + 1); // value
                l.Pop(1);
            }
            l.Pop(1);
            return;
        }
        l.Pop(1);
        if (RawField(l, "set") == LuaType.Table)
        {
            int count = 0;
            l.PushNil();
            while (l.Next(-2))
            {
                count++;
                l.Pop(1);
            }
            w.WriteSetHeader(count);
            l.PushNil();
            while (l.Next(-2))
            {
                l.Pop(1);
                WriteReply(l, w, scriptResp, depth + 1); // the key is the element
            }
            l.Pop(1);
            return;
        }
        l.Pop(1);

        int n = 0;
        while (l.RawGetInteger(-1, n + 1) != LuaType.Nil)
        {
            l.Pop(1);
            n++;
        }
        l.Pop(1);
        w.WriteArrayHeader(n);
        for (int i = 1; i <= n; i++)
        {
            l.RawGetInteger(-1, i);
            WriteReply(l, w, scriptResp, depth + 1);
            l.Pop(1);
        }
    }

    private static void WriteVerbatim(RespWriter w, string format, byte[] s)
    {
        if (!w.IsResp3)
        {
            w.WriteBulkString(s);
            return;
        }
        byte[] f = Encoding.ASCII.GetBytes(format.Length >= 3 ? format[..3] : format.PadRight(3));
        w.WriteRaw(Encoding.ASCII.GetBytes("=" + (s.Length + 4).ToString(CultureInfo.InvariantCulture) + "\r\n"));
        w.WriteRaw(f);
        w.WriteRaw(":"u8);
        w.WriteRaw(s);
        w.WriteRaw("\r\n"u8);
    }

    private static LuaType RawField(Lua l, string name)
    {
        l.PushString(name);
        return l.RawGet(-2);
    }

    /// <summary>A Lua number as Redis converts it: integers as they are, floats truncated toward zero.</summary>
    internal static long ToInt64(Lua l, int index)
    {
        if (l.IsInteger(index)) return l.ToInteger(index);
        double d = l.ToNumber(index);
        if (double.IsNaN(d)) return long.MinValue; // what x86-64's cvttsd2si gives Redis
        if (d >= 9.2233720368547758E18 || d < -9.2233720368547758E18) return long.MinValue;
        return (long)d;
    }

    // ------------------------------------------------------------------ RESP -> Lua

    /// <summary>The index of the first CRLF at or after <paramref name="pos"/> (<c>pos - 1</c> when there is none): the first
    /// CR found by a one-byte search, which in a reply line is the CRLF (simple strings and errors are written without CR
    /// or LF); the two-byte search only if that CR is not followed by LF.</summary>
    internal static int LineEnd(ReadOnlySpan<byte> reply, int pos)
    {
        int cr = reply[pos..].IndexOf((byte)'\r');
        if (cr >= 0 && pos + cr + 1 < reply.Length && reply[pos + cr + 1] == (byte)'\n') return pos + cr;
        return reply[pos..].IndexOf("\r\n"u8) + pos;
    }

    /// <summary>A reply's integer (<c>:n</c>): Redis's canonical form parsed directly, anything else as before by
    /// <see cref="long.Parse(ReadOnlySpan{byte}, IFormatProvider?)"/>.</summary>
    internal static long ReplyInt64(ReadOnlySpan<byte> line) =>
        RespNumbers.TryParseInt64(line, out long v) ? v : long.Parse(line, CultureInfo.InvariantCulture);

    /// <summary>A reply's length or count (<c>$n</c>, <c>*n</c>), as <see cref="ReplyInt64"/>.</summary>
    internal static int ReplyInt32(ReadOnlySpan<byte> line) =>
        RespNumbers.TryParseInt64(line, out long v) && v is >= int.MinValue and <= int.MaxValue ? (int)v : int.Parse(line, CultureInfo.InvariantCulture);

    /// <summary>Pushes the reply at <paramref name="pos"/> as a Lua value (Redis 7.0's redisProtocolToLuaType); null,
    /// or the error to return instead of raising it: "reached lua stack limit" (<see cref="StackLimitError"/>: a reply
    /// nested too deep), or what <c>lua_rawset</c> raised for a RESP3 map or set key Lua cannot store (nil, NaN).</summary>
    private static string? PushReply(Lua l, ReadOnlySpan<byte> reply, ref int pos)
    {
        if (!l.CheckStack(6)) return StackLimitError;
        byte type = reply[pos];
        int lineEnd = LineEnd(reply, pos);
        ReadOnlySpan<byte> line = reply[(pos + 1)..lineEnd];
        pos = lineEnd + 2;
        switch (type)
        {
            case (byte)'+':
                l.CreateTable(0, 1); // sized for its one field: no rehash when "ok" is set
                LuaSandbox.PushBytes(l, "ok"u8);
                LuaSandbox.PushBytes(l, line);
                l.RawSet(-3);
                return null;
            case (byte)'-':
                LuaSandbox.PushErrorTable(l, "-" + Encoding.UTF8.GetString(line));
                return null;
            case (byte)':':
                lua_pushinteger(l.Handle, ReplyInt64(line)); // no allocation
                return null;
            case (byte)'$':
            case (byte)'=':
            {
                int len = ReplyInt32(line);
                if (len < 0)
                {
                    l.PushBoolean(false);
                    return null;
                }
                ReadOnlySpan<byte> body = reply.Slice(pos, len);
                pos += len + 2;
                if (type == '$')
                {
                    LuaSandbox.PushBytes(l, body);
                    return null;
                }
                l.NewTable();
                l.PushString("verbatim_string");
                l.NewTable();
                l.PushString("format");
                l.PushBuffer(body[..3].ToArray());
                l.RawSet(-3);
                l.PushString("string");
                l.PushBuffer(body[4..].ToArray());
                l.RawSet(-3);
                l.RawSet(-3);
                return null;
            }
            case (byte)'*':
            case (byte)'>':
            {
                int n = ReplyInt32(line);
                if (n < 0)
                {
                    l.PushBoolean(false);
                    return null;
                }
                l.CreateTable(n, 0);
                for (int i = 1; i <= n; i++)
                {
                    if (PushReply(l, reply, ref pos) is { } e) return e;
                    l.RawSetInteger(-2, i);
                }
                return null;
            }
            case (byte)'%':
            case (byte)'~':
            {
                bool map = type == '%';
                int n = int.Parse(line, CultureInfo.InvariantCulture);
                l.NewTable();
                l.PushString(map ? "map" : "set");
                l.CreateTable(0, n);
                for (int i = 0; i < n; i++)
                {
                    if (PushReply(l, reply, ref pos) is { } keyError) return keyError;
                    if (map)
                    {
                        if (PushReply(l, reply, ref pos) is { } valueError) return valueError;
                    }
                    else
                    {
                        l.PushBoolean(true);
                    }
                    if (l.IsNil(-2)) return "table index is nil"; // what lua_rawset raises
                    if (LuaLibraries.IsNaNKey(l, -2)) return "table index is NaN";
                    l.RawSet(-3);
                }
                l.RawSet(-3);
                return null;
            }
            case (byte)'_':
                l.PushNil();
                return null;
            case (byte)'#':
                l.PushBoolean(line.Length > 0 && line[0] == 't');
                return null;
            case (byte)',':
            {
                l.NewTable();
                l.PushString("double");
                string s = Encoding.ASCII.GetString(line);
                double d = s switch
                {
                    "inf" => double.PositiveInfinity,
                    "-inf" => double.NegativeInfinity,
                    "nan" => double.NaN,
                    _ => double.Parse(s, NumberStyles.Float, CultureInfo.InvariantCulture),
                };
                l.PushNumber(d);
                l.RawSet(-3);
                return null;
            }
            case (byte)'(':
                l.NewTable();
                l.PushString("big_number");
                l.PushBuffer(line.ToArray());
                l.RawSet(-3);
                return null;
            case (byte)'|':
            {
                // An attribute: skip it, the reply follows.
                int n = int.Parse(line, CultureInfo.InvariantCulture);
                int top = l.GetTop();
                for (int i = 0; i < 2 * n; i++)
                {
                    if (PushReply(l, reply, ref pos) is { } e) return e;
                }
                l.SetTop(top);
                return PushReply(l, reply, ref pos);
            }
            default:
                l.PushNil();
                return null;
        }
    }

    // ------------------------------------------------------------------ redis.*

    private const string StackLimitError = "reached lua stack limit";

    private static readonly HashSet<string> s_deniedInScripts = new(StringComparer.OrdinalIgnoreCase)
    {
        "eval", "evalsha", "eval_ro", "evalsha_ro", "fcall", "fcall_ro", "script", "function",
        "multi", "exec", "discard", "watch", "unwatch",
        "subscribe", "psubscribe", "unsubscribe", "punsubscribe", "ssubscribe", "sunsubscribe",
        "blpop", "brpop", "brpoplpush", "blmove", "blmpop", "bzpopmin", "bzpopmax", "bzmpop", "wait",
        "monitor", "sync", "psync", "replconf", "shutdown", "reset", "debug", "save", "bgsave", "bgrewriteaof",
    };

    // The table entries of s_deniedInScripts, looked up by reference (no case-insensitive string hash per redis.call).
    private static readonly FrozenSet<KvCommandInfo> s_deniedInfos =
        KvCommandTable.All.Where(i => s_deniedInScripts.Contains(i.Name)).ToFrozenSet<KvCommandInfo>(ReferenceEqualityComparer.Instance);

    /// <summary>redis.call (raise: true) and redis.pcall (raise: false).</summary>
    private int Call(IntPtr state, bool raise)
    {
        RunContext? run = _run;
        if (run is null) return LuaSandbox.RaiseError(Lua.FromIntPtr(state), "redis.call/pcall can only be called inside a script invocation");
        // The running sandbox's state object when the call comes from its main thread (KeraLua's FromIntPtr looks the
        // object up on every call); a coroutine's thread gets its own.
        Lua l = run.Sandbox is { } running && running.State.Handle == state ? running.State : Lua.FromIntPtr(state);
        int argc = lua_gettop(state);
        if (argc == 0) return Fail(l, "Please specify at least one argument for this redis lib call", raise);
        KvCommand? command = CommandFromStack(l, argc, logged: run.Capture is not null && (run.Repl & 1) != 0, out bool denied);
        if (command is null) return Fail(l, "Lua redis lib command arguments must be strings or integers", raise);
        KvCommandInfo? info = command.Info;
        bool ping = info?.Id == KvCommandId.Ping, echo = info?.Id == KvCommandId.Echo;
        bool publish = info?.Id is KvCommandId.Publish or KvCommandId.SPublish; // allowed in Redis scripts (not in the AOF: PROPAGATE_REPL only)
        bool lolwut = info?.Id == KvCommandId.Lolwut; // READONLY FAST in Redis 7.0 (not noscript): the art, as from a client
        bool migrate = info?.Id == KvCommandId.Migrate; // a write in Redis 7.0, allowed in scripts (blocks the store owner)
        bool stateless = info?.Id is KvCommandId.Cluster or KvCommandId.ReadOnly or KvCommandId.ReadWrite or KvCommandId.Asking or KvCommandId.PfSelfTest; // not noscript in Redis
        if (info is null)
        {
            // Commands of other branches (MULTI...) that Redis refuses in scripts anyway.
            return Fail(l, s_deniedInScripts.Contains(command.GetString(0)) ? "This Redis command is not allowed from script" : "Unknown Redis command called from script", raise);
        }
        if (stateless && info.Id == KvCommandId.Cluster && command.Count >= 2 && KvRedisCommands.Lookup(command, info) is null)
        {
            return Fail(l, "Unknown Redis command called from script", raise); // Redis's lookup finds no such subcommand
        }
        if (!info.AcceptsArgumentCount(command.Count)) return Fail(l, "Wrong number of args calling Redis command from script", raise);
        if (denied || (info.Handler is null && !ping && !echo && !publish && !stateless && !lolwut && !migrate)) return Fail(l, "This Redis command is not allowed from script", raise);
        if (!run.AclUnrestricted && run.Caller is { } caller && KvConnectionState.ScriptAclError(caller, command, run.Now) is { } aclError) return Fail(l, aclError, raise);
        if (run.ReadOnly && info.IsWrite) return Fail(l, "Write commands are not allowed from read-only scripts.", raise);
        // Redis's scriptVerifyWriteCommandAllow: while the AOF cannot be written, writes fail with the disk error.
        if (info.IsWrite && _store.WritesDeniedError is { } diskError) return Fail(l, "-" + diskError, raise);
        // Redis's scriptVerifyOOM: over maxmemory when the script started, a denyoom command is refused until the script
        // has written something (it cannot be stopped half way after that).
        if (!run.AllowOom && !run.WriteDirty && _store.ScriptOom && _store.IsDenyOom(info, command, run.Session))
            return Fail(l, "-" + KvStore.OomError, raise);
        if (info.IsWrite) run.WriteDirty = true;

        _callReply.ResetWrittenCount();
        RespWriter writer = _callWriter;
        writer.Protocol = run.Resp;
        if (ping)
        {
            if (command.Count == 1) writer.WriteSimpleString("PONG");
            else if (command.Count == 2) writer.WriteBulkString(command[1]);
            else writer.WriteError(KvErrors.WrongArity("ping"));
        }
        else if (echo)
        {
            writer.WriteBulkString(command[1]);
        }
        else if (lolwut)
        {
            // The version the calling client's INFO shows (redis_version); a script without a client (none today) the default.
            KvLolwut.Run(command, writer, run.Caller?.Connection?.ServerVersion ?? new KvServerConfig().Version);
        }
        else if (stateless)
        {
            KvConnectionState.TryStatelessCommand(info, command, writer);
        }
        else if (publish)
        {
            KvPubSub? pubSub = _store.PubSub;
            writer.WriteInteger(pubSub is null ? 0
                : info.Id == KvCommandId.Publish ? pubSub.Publish(command[1], command[2]) : pubSub.ShardPublish(command[1], command[2]));
        }
        else if (migrate)
        {
            // The DEL of the moved keys is what goes to the AOF (Redis rewrites MIGRATE as DEL for propagation).
            Monitor.MarkWrote();
            _store.MigrateBlocking(run.Session, command, run.Now, writer, (run.Repl & 1) != 0 ? run.Capture : null);
        }
        else
        {
            if (info.IsWrite) Monitor.MarkWrote();
            _store.Execute(run.Session, command, run.Now, writer, (run.Repl & 1) != 0 ? run.Capture : null);
        }
        ReadOnlySpan<byte> reply = _callReply.WrittenSpan;
        if (raise && reply[0] == '-') return LuaSandbox.RaiseError(l, Encoding.UTF8.GetString(reply[..^2]));
        int pos = 0;
        if (PushReply(l, reply, ref pos) is { } error)
        {
            return ReferenceEquals(error, StackLimitError) ? LuaSandbox.RaiseError(l, error) : LuaSandbox.ReturnError(l, error);
        }
        return 1;
    }

    /// <summary>The arguments of redis.call/pcall (stack slots 1..<paramref name="argc"/>) as one command, copied once
    /// from the Lua strings into the host's reused command buffer (no array per argument, no command object per call);
    /// null when an argument is neither a string nor a number. Numbers are formatted as Redis 7 formats them
    /// (<see cref="NumberArgument"/>). The command is valid until the next redis.call (the AOF capture copies it).
    /// When <paramref name="logged"/> (the script's effects are captured for the AOF) a write command is built as its AOF
    /// encoding; a command named by a string gets its table entry from <see cref="LookUpName"/>.</summary>
    private unsafe KvCommand? CommandFromStack(Lua l, int argc, bool logged, out bool denied)
    {
        IntPtr state = l.Handle;
        KvCommandInfo? info = null;
        denied = false;
        if (lua_type(state, 1) == LuaTypeString)
        {
            UIntPtr nameLength;
            byte* name = lua_tolstring(state, 1, &nameLength);
            info = LookUpName(name, (int)nameLength, out denied);
        }
        KvCommandBuilder args = (logged && info is { IsWrite: true } ? _loggedCallArgs : _callArgs).Start();
        for (int i = 1; i <= argc; i++)
        {
            int type = lua_type(state, i);
            if (type == LuaTypeNumber)
            {
                if (lua_isinteger(state, i) != 0) args.Add(lua_tointegerx(state, i, null));
                else args.Add(Encoding.ASCII.GetBytes(NumberArgument(l, i)));
            }
            else if (type == LuaTypeString)
            {
                UIntPtr len;
                byte* p = lua_tolstring(state, i, &len);
                args.Add(new ReadOnlySpan<byte>(p, checked((int)len)));
            }
            else
            {
                return null;
            }
        }
        KvCommand command = args.Build();
        if (info is not null) command.SetInfo(info);
        else if (command.Info is { } found) denied = s_deniedInfos.Contains(found); // a name given as a number
        return command;
    }

    /// <summary>The table entry of the command named by the Lua string at <paramref name="name"/> (null: unknown). A
    /// script's command names are constants of its code, so the same string object comes back on every call: the
    /// entry found for a string's address is kept and reused after comparing the bytes with the
    /// entry's name, which also covers a string collected and another made at the same address (16 slots by address).
    /// <paramref name="denied"/>:
    /// the command is one scripts may not call (kept with the entry).</summary>
    private unsafe KvCommandInfo? LookUpName(byte* name, int length, out bool denied)
    {
        ReadOnlySpan<byte> bytes = new(name, length);
        // Fibonacci hashing of the address: Lua's strings sit at 8- or 16-byte steps, often a power of two apart. Two
        // ways, the slot and its neighbour (index ^ 1): which names share a slot depends on where the process's heap
        // lies (ASLR), and with one way a script's two names sharing one missed on every call in some processes.
        int index = ForcedNameSlot >= 0 ? ForcedNameSlot : (int)((ulong)name * 0x9E3779B97F4A7C15UL >> (64 - NameSlotBits));
        ref NameSlot slot = ref _nameSlots[index];
        if (slot.Address == (nint)name && slot.Info is { } cached && Ascii.EqualsIgnoreCase(bytes, cached.Name))
        {
            denied = slot.Denied;
            return cached;
        }
        ref NameSlot pair = ref _nameSlots[index ^ 1];
        if (pair.Address == (nint)name && pair.Info is { } cachedPair && Ascii.EqualsIgnoreCase(bytes, cachedPair.Name))
        {
            denied = pair.Denied;
            return cachedPair;
        }
        NameCacheMisses++;
        KvCommandInfo? info = KvCommandTable.Find(bytes);
        denied = info is not null && s_deniedInfos.Contains(info);
        if (info is not null && Ascii.EqualsIgnoreCase(bytes, info.Name))
        {
            // Into the way that held this address already (a name since freed), else an empty one, else the first.
            var entry = new NameSlot((nint)name, info, denied);
            if (pair.Address == (nint)name || (slot.Address != (nint)name && slot.Info is not null && pair.Info is null)) pair = entry;
            else slot = entry;
        }
        return info;
    }

    /// <summary>redis.call names looked up in the command table (not found in the cache); tests.</summary>
    internal long NameCacheMisses { get; private set; }

    /// <summary>Tests: every name hashes to this slot (-1: by address).</summary>
    internal int ForcedNameSlot { get; set; } = -1;

    private const int NameSlotBits = 4;
    private readonly NameSlot[] _nameSlots = new NameSlot[1 << NameSlotBits];

    private readonly record struct NameSlot(nint Address, KvCommandInfo? Info, bool Denied);

    private readonly KvCommandBuilder _callArgs = new(); // redis.call's command, reused (a call does not nest in another)

    // redis.call's command while the script's effects are captured for the AOF: laid out as its AOF encoding as it is
    // built, so that a write's captured effect (EffectCapture.Append -> AofWriter.WriteCommand) is one copy instead of
    // sizing and formatting every argument again.
    private readonly KvCommandBuilder _loggedCallArgs = new(encoded: true);

    private const int LuaTypeNumber = 3, LuaTypeString = 4; // LUA_TNUMBER, LUA_TSTRING

    private static int Fail(Lua l, string message, bool raise)
    {
        if (raise) return LuaSandbox.RaiseError(l, message);
        LuaSandbox.PushErrorTable(l, message);
        return 1;
    }

    /// <summary>A number argument of redis.call as Redis 7.0 formats it: <c>snprintf("%.17g")</c> of the double (so
    /// 0.1 is <c>0.10000000000000001</c>, -0.0 is <c>-0</c>, 0/0 is <c>-nan</c>; checked against redis-server 7.0.15;
    /// 7.2 switched to fpconv_dtoa's shortest round trip). A Lua 5.4 integer (Redis's Lua 5.1 has none) is written
    /// exactly.</summary>
    private static string NumberArgument(Lua l, int index)
    {
        if (l.IsInteger(index)) return l.ToInteger(index).ToString(CultureInfo.InvariantCulture);
        double d = l.ToNumber(index);
        if (double.IsNaN(d)) return double.IsNegative(d) ? "-nan" : "nan";
        if (double.IsInfinity(d)) return d > 0 ? "inf" : "-inf";
        // .NET's G17 picks fixed or exponent notation by C's %g rule (exponent < -4 or >= precision) and writes the
        // exponent with a sign and at least two digits, as C does; only the letter differs.
        return d.ToString("G17", CultureInfo.InvariantCulture).Replace('E', 'e');
    }

    private int SetResp(IntPtr state)
    {
        Lua l = Lua.FromIntPtr(state);
        if (l.GetTop() != 1) return LuaSandbox.RaiseError(l, "redis.setresp() requires one argument.");
        long resp = l.IsNumber(1) ? (long)l.ToNumber(1) : 0;
        if (resp is not (2 or 3)) return LuaSandbox.RaiseError(l, "RESP version must be 2 or 3.");
        if (_run is not null) _run.Resp = (int)resp;
        return 0;
    }

    private int SetRepl(IntPtr state)
    {
        Lua l = Lua.FromIntPtr(state);
        if (l.GetTop() != 1) return LuaSandbox.RaiseError(l, "redis.set_repl() requires one argument.");
        long flags = l.IsNumber(1) ? (long)l.ToNumber(1) : -1;
        if (flags is < 0 or > 3) return LuaSandbox.RaiseError(l, "Invalid replication flags. Use REPL_AOF, REPL_REPLICA, REPL_ALL or REPL_NONE.");
        if (_run is not null) _run.Repl = (int)flags;
        return 0;
    }

    private static int Sha1HexFunction(IntPtr state)
    {
        Lua l = Lua.FromIntPtr(state);
        if (l.GetTop() != 1) return LuaSandbox.RaiseError(l, "wrong number of arguments");
        byte[] s = l.IsStringOrNumber(1) ? l.ToBuffer(1, false) ?? [] : [];
        l.PushString(Sha1Hex(s));
        return 1;
    }

    private static int ErrorReply(IntPtr state)
    {
        Lua l = Lua.FromIntPtr(state);
        if (l.GetTop() != 1 || l.Type(1) != LuaType.String)
        {
            LuaSandbox.PushErrorTable(l, "wrong number or type of arguments");
            return 1;
        }
        string err = Encoding.UTF8.GetString(l.ToBuffer(1) ?? []);
        LuaSandbox.PushErrorTable(l, err.StartsWith('-') ? err : "-" + err);
        return 1;
    }

    private static int StatusReply(IntPtr state)
    {
        Lua l = Lua.FromIntPtr(state);
        if (l.GetTop() != 1 || l.Type(1) != LuaType.String)
        {
            LuaSandbox.PushErrorTable(l, "wrong number or type of arguments");
            return 1;
        }
        l.NewTable();
        l.PushString("ok");
        l.PushCopy(1);
        l.RawSet(-3);
        return 1;
    }

    private int LogFunction(IntPtr state)
    {
        Lua l = Lua.FromIntPtr(state);
        int argc = l.GetTop();
        if (argc < 2) return LuaSandbox.RaiseError(l, "redis.log() requires two arguments or more.");
        if (!l.IsNumber(1)) return LuaSandbox.RaiseError(l, "First argument must be a number");
        long level = l.ToInteger(1);
        if (level is < 0 or > 3) return LuaSandbox.RaiseError(l, "Invalid debug level.");
        var sb = new StringBuilder();
        for (int i = 2; i <= argc; i++)
        {
            if (i > 2) sb.Append(' ');
            if (l.IsStringOrNumber(i)) sb.Append(Encoding.UTF8.GetString(l.ToBuffer(i, false) ?? []));
        }
        string line = "script log: " + sb;
        if (Log is { } log) log(line);
        else Console.Error.WriteLine(line);
        return 0;
    }

    private static int AclCheckCmd(IntPtr state)
    {
        Lua l = Lua.FromIntPtr(state);
        if (l.GetTop() < 1 || !l.IsStringOrNumber(1)) return LuaSandbox.RaiseError(l, "Please specify at least one argument for this redis lib call");
        if (KvCommandTable.Find(l.ToBuffer(1, false) ?? []) is null) return LuaSandbox.RaiseError(l, "Invalid command passed to redis.acl_check_cmd()");
        l.PushBoolean(true);
        return 1;
    }

    /// <summary>math.random / math.randomseed on Redis's rand48, as Redis replaces them (deterministic sequences).</summary>
    private int MathRandom(IntPtr state)
    {
        Lua l = Lua.FromIntPtr(state);
        _rand48 = (0x5DEECE66DUL * _rand48 + 0xB) & ((1UL << 48) - 1);
        int v = (int)(_rand48 >> 17);
        double r = (v % int.MaxValue) / (double)int.MaxValue;
        switch (l.GetTop())
        {
            case 0:
                l.PushNumber(r);
                return 1;
            case 1:
            {
                if (!LuaSandbox.CheckInteger(l, 1, out long u, out int error)) return error;
                if (u < 1) return LuaSandbox.RaiseWithWhere(l, "bad argument #1 to 'random' (interval is empty)");
                l.PushInteger((long)Math.Floor(r * u) + 1);
                return 1;
            }
            case 2:
            {
                if (!LuaSandbox.CheckInteger(l, 1, out long lo, out int error) || !LuaSandbox.CheckInteger(l, 2, out long up, out error)) return error;
                if (lo > up) return LuaSandbox.RaiseWithWhere(l, "bad argument #2 to 'random' (interval is empty)");
                l.PushInteger((long)Math.Floor(r * (up - lo + 1)) + lo);
                return 1;
            }
            default:
                return LuaSandbox.RaiseWithWhere(l, "wrong number of arguments");
        }
    }

    private int MathRandomSeed(IntPtr state)
    {
        Lua l = Lua.FromIntPtr(state);
        if (!LuaSandbox.CheckInteger(l, 1, out long seedArgument, out int error)) return error;
        int seed = (int)seedArgument;
        _rand48 = ((ulong)(uint)seed << 16) | 0x330E;
        return 0;
    }

    private LuaSandbox CreateSandbox(string chunkName, bool forFunctions)
    {
        var sb = new LuaSandbox(chunkName) { HookCheck = _hookCheck, Log = line => (Log ?? Console.Error.WriteLine)(line) };
        Lua l = sb.State;
        l.NewTable();
        PushCallFunctions(sb);
        AddCommonRedisFields(sb);
        sb.SetFunction("setresp", SetResp);
        sb.SetFunction("set_repl", SetRepl);
        sb.SetFunction("replicate_commands", static s =>
        {
            Lua.FromIntPtr(s).PushBoolean(true);
            return 1;
        });
        sb.SetFunction("breakpoint", static s =>
        {
            Lua.FromIntPtr(s).PushBoolean(false);
            return 1;
        });
        sb.SetFunction("debug", static _ => 0);
        sb.SetFunction("acl_check_cmd", AclCheckCmd);
        foreach (var (name, value) in new[] { ("REPL_NONE", 0), ("REPL_AOF", 1), ("REPL_SLAVE", 2), ("REPL_REPLICA", 2), ("REPL_ALL", 3) })
        {
            l.PushInteger(value);
            l.SetField(-2, name);
        }
        sb.Protect();
        sb.SetRealGlobal("redis");

        // math.random and math.randomseed: Redis's deterministic rand48.
        l.GetGlobal("math"); // the proxy; set through to the real table
        l.GetMetaTable(-1);
        l.GetField(-1, "__index");
        sb.SetFunction("random", MathRandom);
        sb.SetFunction("randomseed", MathRandomSeed);
        l.Pop(3);

        if (forFunctions) CreateLoadRedisTable(sb);
        return sb;
    }

    private void AddCommonRedisFields(LuaSandbox sb)
    {
        Lua l = sb.State;
        sb.SetFunction("error_reply", ErrorReply);
        sb.SetFunction("status_reply", StatusReply);
        sb.SetFunction("sha1hex", Sha1HexFunction);
        sb.SetFunction("log", LogFunction);
        foreach (var (name, value) in new[] { ("LOG_DEBUG", 0), ("LOG_VERBOSE", 1), ("LOG_NOTICE", 2), ("LOG_WARNING", 3) })
        {
            l.PushInteger(value);
            l.SetField(-2, name);
        }
        l.PushString("7.2.0");
        l.SetField(-2, "REDIS_VERSION");
        l.PushInteger(0x070200);
        l.SetField(-2, "REDIS_VERSION_NUM");
    }

    /// <summary>Sets <c>call</c> and <c>pcall</c> in the table on top of the stack: unmanaged entry points (the hot path
    /// of every script) with this host, through a weak handle, as their upvalue; a delegate's reverse P/Invoke costs
    /// several times more per call.</summary>
    private unsafe void PushCallFunctions(LuaSandbox sb)
    {
        Lua l = sb.State;
        if (!_self.IsAllocated) _self = GCHandle.Alloc(this, GCHandleType.Weak);
        l.PushLightUserData(GCHandle.ToIntPtr(_self));
        lua_pushcclosure(l.Handle, &CallEntry, 1);
        l.SetField(-2, "call");
        l.PushLightUserData(GCHandle.ToIntPtr(_self));
        lua_pushcclosure(l.Handle, &PCallEntry, 1);
        l.SetField(-2, "pcall");
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static int CallEntry(IntPtr state) => GuardedCall(state, raise: true);

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static int PCallEntry(IntPtr state) => GuardedCall(state, raise: false);

    // redis.call/pcall inside LuaSandbox.Enter/Exit, a managed exception turned into a script error (see LuaSandbox).
    private static unsafe int GuardedCall(IntPtr state, bool raise)
    {
        long* account = LuaSandbox.Enter(state);
        int results;
        ScriptHost? host = null;
        try
        {
            host = FromUpvalue(state);
            results = host.Call(state, raise);
        }
        catch (Exception e)
        {
            results = LuaSandbox.Fault(state, e, host?.Log);
        }
        return LuaSandbox.Exit(state, account, results);
    }

    private static ScriptHost FromUpvalue(IntPtr state) =>
        (ScriptHost)GCHandle.FromIntPtr(lua_touserdata(state, Lua.UpValueIndex(1))).Target!; // the host owns the state, so it is alive

    public void Dispose()
    {
        _eval?.Dispose();
        _functions?.Dispose();
        if (_self.IsAllocated) _self.Free();
    }
}
