using System.Buffers;
using System.Text;
using EioSharp.Kv.Scripting;

namespace EioSharp.Kv;

public sealed partial class KvStore
{
    private ScriptHost? _scripting;

    /// <summary>The scripting commands: EVAL, EVALSHA, EVAL_RO, EVALSHA_RO, SCRIPT, FUNCTION, FCALL, FCALL_RO.</summary>
    internal static readonly KvCommandInfo[] ScriptingCommands =
    [
        KvCommandTable.Data("eval", -3, KvCommandFlags.Script, 0, 0, 0, static (s, in c) => s.Scripting.Eval(c, bySha: false, readOnlyCommand: false)),
        KvCommandTable.Data("evalsha", -3, KvCommandFlags.Script, 0, 0, 0, static (s, in c) => s.Scripting.Eval(c, bySha: true, readOnlyCommand: false)),
        KvCommandTable.Data("eval_ro", -3, KvCommandFlags.ReadOnly, 0, 0, 0, static (s, in c) => s.Scripting.Eval(c, bySha: false, readOnlyCommand: true)),
        KvCommandTable.Data("evalsha_ro", -3, KvCommandFlags.ReadOnly, 0, 0, 0, static (s, in c) => s.Scripting.Eval(c, bySha: true, readOnlyCommand: true)),
        KvCommandTable.Data("fcall", -3, KvCommandFlags.Script, 0, 0, 0, static (s, in c) => s.Scripting.FCall(c, readOnlyCommand: false)),
        KvCommandTable.Data("fcall_ro", -3, KvCommandFlags.ReadOnly, 0, 0, 0, static (s, in c) => s.Scripting.FCall(c, readOnlyCommand: true)),
        KvCommandTable.Data("script", -2, KvCommandFlags.None, 0, 0, 0, static (s, in c) => s.Script(c)),
        // Write: FUNCTION LOAD/DELETE/FLUSH/RESTORE change the dataset (the libraries) and are logged to the AOF.
        KvCommandTable.Data("function", -2, KvCommandFlags.Write, 0, 0, 0, static (s, in c) => s.Function(c)),
    ];

    /// <summary>Published for the connections while a script runs (-BUSY, SCRIPT KILL); the server shares one
    /// monitor between the store and its connections (and across store restarts).</summary>
    public KvScriptMonitor ScriptMonitor { get; set; } = new();

    /// <summary>Where <c>redis.log</c> lines go; null: standard error.</summary>
    public Action<string>? ScriptLog
    {
        get => Scripting.Log;
        set => Scripting.Log = value;
    }

    internal ScriptHost Scripting => _scripting ??= new ScriptHost(this);

    /// <summary>Appends a command captured from a script (its SELECTs included) to the AOF as it is.</summary>
    internal void LogRaw(IAofSink aof, KvCommand command)
    {
        if (!ReferenceEquals(aof, _aofSinkSeen))
        {
            _aofSinkSeen = aof;
            _aofDb = -1;
        }
        if (Ascii.EqualsIgnoreCase(command[0], "SELECT"u8) && RespNumbers.TryParseInt64(command[1], out long db))
        {
            if (db == _aofDb) return; // already there
            _aofDb = (int)db;
        }
        aof.Append(command);
    }

    /// <summary>The database the AOF is in for <paramref name="aof"/> (-1: unknown).</summary>
    internal int AofDatabase(IAofSink aof) => ReferenceEquals(aof, _aofSinkSeen) ? _aofDb : -1;

    /// <summary>Makes <paramref name="aof"/> the current sink again, in database <paramref name="db"/> (-1: unknown).</summary>
    internal void RestoreAofDatabase(IAofSink aof, int db)
    {
        _aofSinkSeen = aof;
        _aofDb = db;
    }

    /// <summary>The snapshot entry that rewrites the FUNCTION libraries (null when there are none); it comes first.</summary>
    private KvSnapshotEntry? FunctionsSnapshotEntry()
    {
        if (_scripting is null || _scripting.Libraries.Count == 0) return null;
        var codes = new List<byte[]>(_scripting.Libraries.Count);
        foreach (ScriptHost.FunctionLibrary library in _scripting.Libraries) codes.Add(library.Code);
        return new KvSnapshotEntry(0, [], new KvFunctionLibraries(codes), -1);
    }

    private void Script(in Context ctx)
    {
        ReadOnlySpan<byte> sub = ctx[1];
        if (Ascii.EqualsIgnoreCase(sub, "LOAD"u8) && ctx.Count == 3)
        {
            string? error = Scripting.LoadScript(ctx[2], out string sha);
            if (error is not null) ctx.Reply.WriteError(error);
            else ctx.Reply.WriteBulkString(sha);
        }
        else if (Ascii.EqualsIgnoreCase(sub, "EXISTS"u8) && ctx.Count >= 3)
        {
            ctx.Reply.WriteArrayHeader(ctx.Count - 2);
            for (int i = 2; i < ctx.Count; i++) ctx.Reply.WriteInteger(Scripting.ScriptExists(Encoding.UTF8.GetString(ctx[i])) ? 1 : 0);
        }
        else if (Ascii.EqualsIgnoreCase(sub, "FLUSH"u8) && ctx.Count <= 3)
        {
            if (ctx.Count == 3 && !Ascii.EqualsIgnoreCase(ctx[2], "ASYNC"u8) && !Ascii.EqualsIgnoreCase(ctx[2], "SYNC"u8))
            {
                ctx.Reply.WriteError("ERR SCRIPT FLUSH only support SYNC|ASYNC option");
                return;
            }
            Scripting.FlushScripts();
            ctx.Reply.WriteOk();
        }
        else if (Ascii.EqualsIgnoreCase(sub, "KILL"u8) && ctx.Count == 2)
        {
            ctx.Reply.WriteError(KvScriptMonitor.NotBusyError); // a running script is killed from the connection side
        }
        else if (Ascii.EqualsIgnoreCase(sub, "HELP"u8) && ctx.Count == 2)
        {
            WriteHelp(ctx.Reply, "SCRIPT",
            [
                "EXISTS <sha1> [<sha1> ...]", "    Return information about the existence of the scripts in the script cache.",
                "FLUSH [ASYNC|SYNC]", "    Flush the Lua scripts cache. Very dangerous on replicas.",
                "    When called without the optional mode argument, the behavior is determined by the",
                "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
                "    * ASYNC: Asynchronously flush the scripts cache.",
                "    * SYNC: Synchronously flush the scripts cache.",
                "KILL", "    Kill the currently executing Lua script.",
                "LOAD <script>", "    Load a script into the scripts cache without executing it.",
            ]);
        }
        else
        {
            ctx.Reply.WriteError(KvErrors.UnknownSubcommand(Encoding.UTF8.GetString(sub), "script"));
        }
    }

    private void Function(in Context ctx)
    {
        ReadOnlySpan<byte> sub = ctx[1];
        if (Ascii.EqualsIgnoreCase(sub, "LOAD"u8) && ctx.Count is 3 or 4)
        {
            bool replace = ctx.Count == 4;
            if (replace && !Ascii.EqualsIgnoreCase(ctx[2], "REPLACE"u8))
            {
                ctx.Reply.WriteError($"ERR Unknown option given: {Encoding.UTF8.GetString(ctx[2])}");
                return;
            }
            string? error = Scripting.LoadLibrary(ctx.Command.ToArray(ctx.Count - 1), replace, out string name);
            if (error is not null)
            {
                ctx.Reply.WriteError(error);
                return;
            }
            Dirty++;
            ctx.LogSelf();
            ctx.Reply.WriteBulkString(name);
        }
        else if (Ascii.EqualsIgnoreCase(sub, "DELETE"u8) && ctx.Count == 3)
        {
            if (!Scripting.DeleteLibrary(Encoding.UTF8.GetString(ctx[2])))
            {
                ctx.Reply.WriteError("ERR Library not found");
                return;
            }
            Dirty++;
            ctx.LogSelf();
            ctx.Reply.WriteOk();
        }
        else if (Ascii.EqualsIgnoreCase(sub, "FLUSH"u8) && ctx.Count <= 3)
        {
            if (ctx.Count == 3 && !Ascii.EqualsIgnoreCase(ctx[2], "ASYNC"u8) && !Ascii.EqualsIgnoreCase(ctx[2], "SYNC"u8))
            {
                ctx.Reply.WriteError("ERR FUNCTION FLUSH only supports SYNC|ASYNC option");
                return;
            }
            Scripting.FlushFunctions();
            Dirty++;
            ctx.LogSelf();
            ctx.Reply.WriteOk();
        }
        else if (Ascii.EqualsIgnoreCase(sub, "LIST"u8))
        {
            FunctionList(ctx);
        }
        else if (Ascii.EqualsIgnoreCase(sub, "STATS"u8) && ctx.Count == 2)
        {
            ctx.Reply.WriteMapHeader(2);
            ctx.Reply.WriteBulkString("running_script"u8);
            ctx.Reply.WriteNull(); // the store answers only between scripts
            ctx.Reply.WriteBulkString("engines"u8);
            ctx.Reply.WriteMapHeader(1);
            ctx.Reply.WriteBulkString("LUA"u8);
            ctx.Reply.WriteMapHeader(2);
            ctx.Reply.WriteBulkString("libraries_count"u8);
            ctx.Reply.WriteInteger(Scripting.Libraries.Count);
            ctx.Reply.WriteBulkString("functions_count"u8);
            ctx.Reply.WriteInteger(Scripting.FunctionCount);
        }
        else if (Ascii.EqualsIgnoreCase(sub, "DUMP"u8) && ctx.Count == 2)
        {
            ctx.Reply.WriteBulkString(FunctionDump.Create(Scripting.Libraries));
        }
        else if (Ascii.EqualsIgnoreCase(sub, "RESTORE"u8) && ctx.Count is 3 or 4)
        {
            FunctionRestore(ctx);
        }
        else if (Ascii.EqualsIgnoreCase(sub, "KILL"u8) && ctx.Count == 2)
        {
            ctx.Reply.WriteError(KvScriptMonitor.NotBusyError);
        }
        else if (Ascii.EqualsIgnoreCase(sub, "HELP"u8) && ctx.Count == 2)
        {
            WriteHelp(ctx.Reply, "FUNCTION",
            [
                "LOAD [REPLACE] <FUNCTION CODE>", "    Create a new library with the given library name and code.",
                "DELETE <LIBRARY NAME>", "    Delete the given library.",
                "LIST [LIBRARYNAME PATTERN] [WITHCODE]", "    Return general information on all the libraries:",
                "FLUSH [ASYNC|SYNC]", "    Deletes all the libraries.",
                "STATS", "    Return information about the current function running.",
                "KILL", "    Kill the current running function.",
                "DUMP", "    Return a serialized payload representing the current libraries, can be restored using FUNCTION RESTORE command",
                "RESTORE <PAYLOAD> [FLUSH|APPEND|REPLACE]", "    Restore the libraries represented by the given payload, it is possible to give a restore policy to",
            ]);
        }
        else
        {
            ctx.Reply.WriteError(KvErrors.UnknownSubcommand(Encoding.UTF8.GetString(sub), "function"));
        }
    }

    private void FunctionList(in Context ctx)
    {
        bool withCode = false;
        string? pattern = null;
        for (int i = 2; i < ctx.Count; i++)
        {
            if (Ascii.EqualsIgnoreCase(ctx[i], "WITHCODE"u8) && !withCode)
            {
                withCode = true;
            }
            else if (Ascii.EqualsIgnoreCase(ctx[i], "LIBRARYNAME"u8) && pattern is null)
            {
                if (i + 1 >= ctx.Count)
                {
                    ctx.Reply.WriteError("ERR library name argument was not given");
                    return;
                }
                pattern = Encoding.UTF8.GetString(ctx[++i]);
            }
            else
            {
                ctx.Reply.WriteError($"ERR Unknown argument {Encoding.UTF8.GetString(ctx[i])}");
                return;
            }
        }
        var libraries = new List<ScriptHost.FunctionLibrary>();
        foreach (ScriptHost.FunctionLibrary library in Scripting.Libraries)
        {
            if (pattern is null || GlobPattern.IsMatch(Encoding.UTF8.GetBytes(pattern), Encoding.UTF8.GetBytes(library.Name), ignoreCase: false)) libraries.Add(library);
        }
        RespWriter w = ctx.Reply;
        w.WriteArrayHeader(libraries.Count);
        foreach (ScriptHost.FunctionLibrary library in libraries)
        {
            w.WriteMapHeader(withCode ? 4 : 3);
            w.WriteBulkString("library_name"u8);
            w.WriteBulkString(library.Name);
            w.WriteBulkString("engine"u8);
            w.WriteBulkString("LUA"u8);
            w.WriteBulkString("functions"u8);
            w.WriteArrayHeader(library.Functions.Count);
            foreach (ScriptHost.LuaFunctionEntry f in library.Functions)
            {
                w.WriteMapHeader(3);
                w.WriteBulkString("name"u8);
                w.WriteBulkString(f.Name);
                w.WriteBulkString("description"u8);
                if (f.Description is null) w.WriteNull();
                else w.WriteBulkString(f.Description);
                w.WriteBulkString("flags"u8);
                w.WriteSetHeader(f.Flags.Length);
                foreach (string flag in f.Flags) w.WriteBulkString(flag);
            }
            if (withCode)
            {
                w.WriteBulkString("library_code"u8);
                w.WriteBulkString(library.Code);
            }
        }
    }

    private void FunctionRestore(in Context ctx)
    {
        string policy = ctx.Count == 4 ? Encoding.UTF8.GetString(ctx[3]).ToUpperInvariant() : "APPEND";
        if (policy is not ("FLUSH" or "APPEND" or "REPLACE"))
        {
            ctx.Reply.WriteError("ERR Wrong restore policy given, value should be either FLUSH, APPEND or REPLACE.");
            return;
        }
        List<byte[]>? codes = FunctionDump.Parse(ctx[2]);
        if (codes is null)
        {
            ctx.Reply.WriteError("ERR DUMP payload version or checksum are wrong");
            return;
        }
        // Check everything against a copy of the state first: a failed restore changes nothing.
        var previous = new List<byte[]>();
        foreach (ScriptHost.FunctionLibrary library in Scripting.Libraries) previous.Add(library.Code);
        if (policy == "FLUSH") Scripting.FlushFunctions();
        string? error = null;
        foreach (byte[] code in codes)
        {
            error = Scripting.LoadLibrary(code, replace: policy == "REPLACE", out _);
            if (error is not null) break;
        }
        if (error is not null)
        {
            Scripting.FlushFunctions();
            foreach (byte[] code in previous) Scripting.LoadLibrary(code, replace: false, out _);
            ctx.Reply.WriteError(error);
            return;
        }
        Dirty++;
        ctx.LogSelf();
        ctx.Reply.WriteOk();
    }

    private static void WriteHelp(RespWriter w, string command, string[] lines)
    {
        w.WriteArrayHeader(lines.Length + 3);
        w.WriteSimpleString($"{command} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:");
        foreach (string line in lines) w.WriteSimpleString(line);
        w.WriteSimpleString("HELP");
        w.WriteSimpleString("    Print this help.");
    }
}

/// <summary>The FUNCTION libraries in an AOF rewrite snapshot: rewritten as <c>FUNCTION LOAD REPLACE code</c>, one per
/// library, before the keys. Not a key: it only rides in <see cref="KvStore.CreateSnapshot"/>'s list.</summary>
internal sealed class KvFunctionLibraries(List<byte[]> codes) : KvObject
{
    public override KvType Type => KvType.String;

    public override string Encoding => "functions";

    public override long Length => codes.Count;

    /// <summary>The libraries' source codes (an RDB's FUNCTION2 records).</summary>
    public IReadOnlyList<byte[]> Codes => codes;

    public override KvObject Clone() => this; // immutable

    public override void WriteRewrite(ReadOnlySpan<byte> key, IBufferWriter<byte> output)
    {
        foreach (byte[] code in codes)
        {
            AofWriter.WriteArrayHeader(output, 4);
            AofWriter.WriteBulkString(output, "FUNCTION"u8);
            AofWriter.WriteBulkString(output, "LOAD"u8);
            AofWriter.WriteBulkString(output, "REPLACE"u8);
            AofWriter.WriteBulkString(output, code);
        }
    }

    public override long EstimateBytes()
    {
        long n = 0;
        foreach (byte[] code in codes) n += code.Length;
        return n;
    }
}
