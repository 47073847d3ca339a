using System.Text;
using KeraLua;

namespace EioSharp.Kv.Scripting;

internal sealed partial class ScriptHost
{
    private readonly List<FunctionLibrary> _libraries = []; // in load order (FUNCTION LIST, DUMP, AOF rewrite)
    private readonly Dictionary<string, LuaFunctionEntry> _functionsByName = new(StringComparer.Ordinal);
    private int _loadRedisTable; // registry ref of the redis table seen while a library loads (no redis.call)
    private int _runRedisTable; // registry ref of the normal one

    /// <summary>A FUNCTION library: its code and the functions it registered.</summary>
    internal sealed class FunctionLibrary(string name, byte[] code)
    {
        public string Name { get; } = name;
        public byte[] Code { get; } = code;
        public List<LuaFunctionEntry> Functions { get; } = [];
    }

    /// <summary>A function registered by <c>redis.register_function</c>.</summary>
    internal sealed record LuaFunctionEntry(string Name, int Ref, string? Description, string[] Flags, FunctionLibrary Library)
    {
        public bool NoWrites => Flags.Contains("no-writes");
    }

    /// <summary>A FUNCTION LOAD in progress.</summary>
    private sealed class LoadContext
    {
        public long StartTicks = Environment.TickCount64;
        public List<(string Name, int Ref, string? Description, string[] Flags)> Registered = [];
    }

    /// <summary>The libraries, in load order.</summary>
    public IReadOnlyList<FunctionLibrary> Libraries => _libraries;

    private LuaSandbox FunctionSandbox
    {
        get
        {
            if (_functions is null)
            {
                _functions = CreateSandbox("@user_function", forFunctions: true);
            }
            return _functions;
        }
    }

    private void CreateLoadRedisTable(LuaSandbox sb)
    {
        Lua l = sb.State;
        l.GetGlobal("redis");
        _runRedisTable = l.Ref(LuaRegistry.Index);
        l.NewTable();
        AddCommonRedisFields(sb);
        sb.SetFunction("register_function", RegisterFunction);
        sb.SetFunction("setresp", SetResp);
        // Reading a missing field (redis.call during a load) fails like a missing global, as in Redis.
        l.NewTable();
        sb.PushFunction(LuaLibraries.NonexistentGlobal);
        l.SetField(-2, "__index");
        l.SetMetaTable(-2);
        sb.Protect();
        _loadRedisTable = l.Ref(LuaRegistry.Index);
    }

    /// <summary>FUNCTION LOAD [REPLACE] code: returns the library name, or the error reply text.</summary>
    public string? LoadLibrary(byte[] code, bool replace, out string name)
    {
        name = "";
        if (!code.AsSpan().StartsWith("#!"u8)) return "ERR Missing library metadata";
        int end = code.AsSpan().IndexOf((byte)'\n');
        if (end < 0) end = code.Length;
        string[] parts = Encoding.UTF8.GetString(code, 2, end - 2).Split(' ', StringSplitOptions.RemoveEmptyEntries);
        if (parts.Length == 0) return "ERR Engine '' not found";
        if (!parts[0].Equals("lua", StringComparison.OrdinalIgnoreCase)) return $"ERR Engine '{parts[0]}' not found";
        string? libName = null;
        foreach (string part in parts.AsSpan(1))
        {
            if (part.StartsWith("name=", StringComparison.Ordinal)) libName = part[5..];
            else return $"ERR Invalid metadata value given: {part}";
        }
        if (libName is null) return "ERR Library name was not given";
        if (!IsValidName(libName)) return "ERR Library names can only contain letters, numbers, or underscores(_) and must be at least one character long";
        FunctionLibrary? existing = _libraries.Find(x => x.Name == libName);
        if (existing is not null && !replace) return $"ERR Library '{libName}' already exists";

        LuaSandbox sb = FunctionSandbox;
        Lua l = sb.State;
        int top = l.GetTop();
        LuaSandbox.HostScope host = sb.Host(); // the host's own calls outside the protected call: no allocation fails
        sb.PushErrorHandler();
        string? compileError = sb.Compile(code.AsSpan(end));
        if (compileError is not null)
        {
            l.SetTop(top);
            host.Dispose();
            return "ERR Error compiling function: " + compileError;
        }
        var loading = new LoadContext();
        _loading = loading;
        l.RawGetInteger(LuaRegistry.Index, _loadRedisTable);
        sb.SetRealGlobal("redis");
        host.Dispose();
        sb.SetHook(true);
        LuaStatus status;
        try
        {
            status = l.PCall(0, 0, top + 1);
        }
        finally
        {
            sb.CheckNoCallbackUnwound();
            sb.SetHook(false);
            _loading = null;
            host = sb.Host();
            l.RawGetInteger(LuaRegistry.Index, _runRedisTable);
            sb.SetRealGlobal("redis");
        }
        string? error = null;
        if (status != LuaStatus.OK)
        {
            string msg = l.Type(-1) == LuaType.Table ? GetStringField(l, "err") ?? "" : l.ToString(-1) ?? "";
            error = "ERR Error registering functions: " + msg;
        }
        else if (loading.Registered.Count == 0)
        {
            error = "ERR No functions registered";
        }
        else
        {
            foreach (var f in loading.Registered)
            {
                if (_functionsByName.TryGetValue(f.Name, out LuaFunctionEntry? other) && other.Library != existing)
                {
                    error = $"ERR Function {f.Name} already exists";
                    break;
                }
            }
        }
        l.SetTop(top);
        host.Dispose();
        if (error is not null)
        {
            foreach (var f in loading.Registered) l.Unref(LuaRegistry.Index, f.Ref);
            return error;
        }
        int index = _libraries.Count;
        if (existing is not null)
        {
            index = _libraries.IndexOf(existing);
            RemoveLibrary(existing);
        }
        var library = new FunctionLibrary(libName, code);
        foreach (var f in loading.Registered)
        {
            var entry = new LuaFunctionEntry(f.Name, f.Ref, f.Description, f.Flags, library);
            library.Functions.Add(entry);
            _functionsByName[f.Name] = entry;
        }
        _libraries.Insert(index, library);
        name = libName;
        return null;
    }

    private void RemoveLibrary(FunctionLibrary library)
    {
        foreach (LuaFunctionEntry f in library.Functions)
        {
            _functionsByName.Remove(f.Name);
            _functions?.State.Unref(LuaRegistry.Index, f.Ref);
        }
        _libraries.Remove(library);
    }

    /// <summary>FUNCTION DELETE: false when there is no such library.</summary>
    public bool DeleteLibrary(string name)
    {
        FunctionLibrary? library = _libraries.Find(x => x.Name == name);
        if (library is null) return false;
        RemoveLibrary(library);
        return true;
    }

    /// <summary>FUNCTION FLUSH: every library goes, and the functions' Lua state with them.</summary>
    public void FlushFunctions()
    {
        _libraries.Clear();
        _functionsByName.Clear();
        _functions?.Dispose();
        _functions = null;
    }

    /// <summary>Number of registered functions.</summary>
    public int FunctionCount => _functionsByName.Count;

    /// <summary>FCALL / FCALL_RO.</summary>
    public void FCall(in KvStore.Context ctx, bool readOnlyCommand)
    {
        if (!TryParseKeyCount(ctx, 2, functions: true, out int numKeys)) return;
        if (!_functionsByName.TryGetValue(Encoding.UTF8.GetString(ctx[1]), out LuaFunctionEntry? f))
        {
            ctx.Reply.WriteError("ERR Function not found");
            return;
        }
        if (readOnlyCommand && !f.NoWrites)
        {
            ctx.Reply.WriteError("ERR Can not execute a script with write flag using *_ro command.");
            return;
        }
        Run(ctx, FunctionSandbox, f.Ref, numKeys, isEval: false, f.Name, readOnlyCommand || f.NoWrites, f.Flags.Contains("allow-oom"));
    }

    private static bool IsValidName(string name)
    {
        if (name.Length == 0) return false;
        foreach (char c in name)
        {
            if (!(char.IsAsciiLetterOrDigit(c) || c == '_')) return false;
        }
        return true;
    }

    /// <summary>redis.register_function(name, callback) or redis.register_function{function_name=..., callback=..., flags=..., description=...}.</summary>
    private int RegisterFunction(IntPtr state)
    {
        Lua l = Lua.FromIntPtr(state);
        LoadContext? loading = _loading;
        if (loading is null) return LuaSandbox.RaiseError(l, "redis.register_function can only be called on FUNCTION LOAD command");
        int argc = l.GetTop();
        string? name = null, description = null;
        var flags = new List<string>();
        bool hasCallback = false;
        if (argc == 1)
        {
            if (l.Type(1) != LuaType.Table) return LuaSandbox.RaiseError(l, "calling redis.register_function with a single argument is only applicable to Lua table (representing named arguments).");
            l.PushNil();
            while (l.Next(1))
            {
                if (l.Type(-2) != LuaType.String) return LuaSandbox.RaiseError(l, "named argument key given to redis.register_function is not a string");
                string key = l.ToString(-2, false) ?? "";
                switch (key)
                {
                    case "function_name":
                        if (l.Type(-1) != LuaType.String) return LuaSandbox.RaiseError(l, "function_name argument given to redis.register_function must be a string");
                        name = l.ToString(-1, false);
                        break;
                    case "description":
                        if (l.Type(-1) != LuaType.String) return LuaSandbox.RaiseError(l, "description argument given to redis.register_function must be a string");
                        description = l.ToString(-1, false);
                        break;
                    case "callback":
                        if (l.Type(-1) != LuaType.Function) return LuaSandbox.RaiseError(l, "callback argument given to redis.register_function must be a function");
                        hasCallback = true;
                        break;
                    case "flags":
                        if (l.Type(-1) != LuaType.Table) return LuaSandbox.RaiseError(l, "flags argument to redis.register_function must be a table representing function flags");
                        for (int i = 1; l.RawGetInteger(-1, i) != LuaType.Nil; i++)
                        {
                            string? flag = l.Type(-1) == LuaType.String ? l.ToString(-1, false) : null;
                            if (flag is not ("no-writes" or "allow-oom" or "allow-stale" or "no-cluster" or "allow-cross-slot-keys")) return LuaSandbox.RaiseError(l, "unknown flag given");
                            flags.Add(flag);
                            l.Pop(1);
                        }
                        l.Pop(1);
                        break;
                    default:
                        return LuaSandbox.RaiseError(l, "unknown argument given to redis.register_function");
                }
                l.Pop(1);
            }
            if (name is null) return LuaSandbox.RaiseError(l, "redis.register_function must get a function name argument");
            if (!hasCallback) return LuaSandbox.RaiseError(l, "redis.register_function must get a callback argument");
            l.PushString("callback"); // present (the traversal found it): a raw read, no metamethod
            l.RawGet(1);
        }
        else if (argc == 2)
        {
            if (l.Type(1) != LuaType.String) return LuaSandbox.RaiseError(l, "first argument to redis.register_function must be a string");
            if (l.Type(2) != LuaType.Function) return LuaSandbox.RaiseError(l, "second argument to redis.register_function must be a function");
            name = l.ToString(1, false);
            l.PushCopy(2);
        }
        else
        {
            return LuaSandbox.RaiseError(l, "wrong number of arguments to redis.register_function");
        }
        if (name is null || !IsValidName(name)) return LuaSandbox.RaiseError(l, "Function names can only contain letters, numbers, or underscores(_) and must be at least one character long");
        if (loading.Registered.Exists(f => f.Name == name)) return LuaSandbox.RaiseError(l, "Function already exists in the library");
        int reference = l.Ref(LuaRegistry.Index);
        loading.Registered.Add((name, reference, description, [.. flags]));
        return 0;
    }
}
