
use builtin;
use str;

set edit:completion:arg-completer[zc] = {|@words|
    fn spaces {|n|
        builtin:repeat $n ' ' | str:join ''
    }
    fn cand {|text desc|
        edit:complex-candidate $text &display=$text' '(spaces (- 14 (wcswidth $text)))$desc
    }
    var command = 'zc'
    for word $words[1..-1] {
        if (str:has-prefix $word '-') {
            break
        }
        set command = $command';'$word
    }
    var completions = [
        &'zc'= {
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
            cand send 'Send files and directories (''-'' for stdin) to a receiver at HOST:PORT, or with --listen wait for a receiver to connect (with -k, for every receiver until interrupted)'
            cand recv 'Listen and receive (default [::]:9000, into the current directory, announced on the LAN), or connect to a listening sender at HOST:PORT or announced as @NAME'
            cand peers 'List the zc receivers and serving senders announced on the LAN'
            cand completions 'Print a completion script for a shell'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'zc;send'= {
            cand -l 'Reverse mode: listen here (PORT, HOST:PORT, [V6]:PORT) and send to the receiver that connects (''zc recv HOST:PORT'')'
            cand --listen 'Reverse mode: listen here (PORT, HOST:PORT, [V6]:PORT) and send to the receiver that connects (''zc recv HOST:PORT'')'
            cand --offset 'Start at this byte of FILE; the receiver writes at the same offset'
            cand --count 'Send at most this many bytes from the offset'
            cand --name 'The name announced for a single source (default: its base name)'
            cand --retry 'On a dropped connection, reconnect up to N times with backoff and resume (framed mode only: not with --raw)'
            cand --max-conns 'With -k: at most N transfers at once; later receivers wait their turn (default 256)'
            cand --connect-timeout 'Give up connecting after this many seconds'
            cand --timeout 'Give up when no byte has moved for this many seconds'
            cand --limit-rate 'Move at most RATE bytes a second (500K, 10M, 1.5G: the suffixes of --offset). The sender paces what it hands to sendfile, the receiver what it reads; either side can set it'
            cand --progress 'How to show progress on stderr'
            cand --key 'Pre-shared key: both sides must hold it. It authenticates both ends and encrypts the whole session (names, sizes, data) with AES-256-GCM after a SPAKE2 handshake; a wrong key is refused before anything is sent. The bytes then go through user space (no sendfile or splice; see --no-encrypt). Prefer ZC_KEY: a command line shows in ps'
            cand --code 'A one-time code instead of a key. Alone on the listening side (''zc recv --code''), zc makes a fresh one and prints it with the command to run on the other side, which gives it (''--code 7-plaza-quartz-ember''). Encrypts the session as a key does; one wrong try burns the code'
            cand --announce 'Listening: the name announced on the LAN (default: this host''s name)'
            cand --find-timeout 'Looking for a peer on the LAN (@NAME, or no address): give up after this many seconds'
            cand --no-resume 'Start at --offset (default 0) even if the receiver holds a partial copy'
            cand -L 'In a directory, follow symbolic links and send what they point to (without it, links that stay inside the tree are sent as links)'
            cand --dereference 'In a directory, follow symbolic links and send what they point to (without it, links that stay inside the tree are sent as links)'
            cand -k 'With --listen: serve the sources to every receiver that connects, several at once, until interrupted; each file is hashed once, not once per receiver'
            cand --keep-open 'With --listen: serve the sources to every receiver that connects, several at once, until interrupted; each file is hashed once, not once per receiver'
            cand --no-sendfile 'Use the buffered copy path instead of sendfile(2)'
            cand --http 'Serve the sources over plain HTTP/1.1 to any client (curl, wget, a browser) until interrupted, on --listen ADDR (default [::]:9000); the URLs carry a random token unless --open; refused with a key or a code, which plain HTTP cannot carry'
            cand --open 'With --http: serve without the token in the URLs, to anyone who can reach the port (a trusted network only)'
            cand --raw 'Plain bytes, no header or negotiation: talks to nc, socat, /dev/tcp'
            cand --no-verify 'Skip the SHA-256 end-to-end check'
            cand -4 'Use IPv4 only'
            cand -6 'Use IPv6 only'
            cand -q 'No progress and no summary; errors still go to stderr'
            cand --quiet 'No progress and no summary; errors still go to stderr'
            cand --json 'Every line written to stderr is one JSON object'
            cand --no-announce 'Listening: do not announce on the LAN'
            cand --no-encrypt 'With a key: authenticate both ends but send in the clear, so sendfile(2) and splice(2) stay zero-copy. Anyone on the path can read names, sizes and data (the digests are keyed, so changes are still caught). For a trusted link; both sides must agree'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'zc;recv'= {
            cand -l 'Where to listen: PORT, HOST:PORT or [V6]:PORT (port 0 picks a free one)'
            cand --listen 'Where to listen: PORT, HOST:PORT or [V6]:PORT (port 0 picks a free one)'
            cand -o 'A file, an existing directory, or ''-'' for stdout (default: the current directory)'
            cand --output 'A file, an existing directory, or ''-'' for stdout (default: the current directory)'
            cand --max-conns 'With -k: at most N transfers at once; later senders wait their turn (default 256)'
            cand --max-size 'Refuse transfers larger than this'
            cand --max-files 'Refuse a tree with more entries than this'
            cand --max-memory 'Refuse a tree whose manifest would take the receiver past this much memory for manifests (the files asked for, the directories and links kept for the end): the receiver''s whole budget, shared by the sessions of -k; 256M holds a million entries of ordinary names'
            cand --offset 'With --raw: write from this byte of the output file, without truncating it'
            cand --connect-timeout 'Give up connecting after this many seconds'
            cand --timeout 'Give up when no byte has moved for this many seconds'
            cand --limit-rate 'Move at most RATE bytes a second (500K, 10M, 1.5G: the suffixes of --offset). The sender paces what it hands to sendfile, the receiver what it reads; either side can set it'
            cand --progress 'How to show progress on stderr'
            cand --key 'Pre-shared key: both sides must hold it. It authenticates both ends and encrypts the whole session (names, sizes, data) with AES-256-GCM after a SPAKE2 handshake; a wrong key is refused before anything is sent. The bytes then go through user space (no sendfile or splice; see --no-encrypt). Prefer ZC_KEY: a command line shows in ps'
            cand --code 'A one-time code instead of a key. Alone on the listening side (''zc recv --code''), zc makes a fresh one and prints it with the command to run on the other side, which gives it (''--code 7-plaza-quartz-ember''). Encrypts the session as a key does; one wrong try burns the code'
            cand --announce 'Listening: the name announced on the LAN (default: this host''s name)'
            cand --find-timeout 'Looking for a peer on the LAN (@NAME, or no address): give up after this many seconds'
            cand --force 'Overwrite an existing complete file'
            cand -p 'Give what arrives the sender''s permission bits exactly, not less this side''s umask (setuid, setgid and sticky are never set)'
            cand --preserve-modes 'Give what arrives the sender''s permission bits exactly, not less this side''s umask (setuid, setgid and sticky are never set)'
            cand -k 'Keep listening and accept transfers concurrently until interrupted'
            cand --keep-open 'Keep listening and accept transfers concurrently until interrupted'
            cand --http 'Take uploads over plain HTTP/1.1 from any client (curl -T, a browser''s upload page) into the -o directory until interrupted, on --listen ADDR (default [::]:9000); the URLs carry a random token unless --open; refused with a key or a code, which plain HTTP cannot carry'
            cand --open 'With --http: take uploads without the token in the URLs, from anyone who can reach the port (a trusted network only)'
            cand --raw 'Plain bytes, no header or negotiation: talks to nc, socat, /dev/tcp'
            cand --no-verify 'Skip the SHA-256 end-to-end check'
            cand -4 'Use IPv4 only'
            cand -6 'Use IPv6 only'
            cand -q 'No progress and no summary; errors still go to stderr'
            cand --quiet 'No progress and no summary; errors still go to stderr'
            cand --json 'Every line written to stderr is one JSON object'
            cand --no-announce 'Listening: do not announce on the LAN'
            cand --no-encrypt 'With a key: authenticate both ends but send in the clear, so sendfile(2) and splice(2) stay zero-copy. Anyone on the path can read names, sizes and data (the digests are keyed, so changes are still caught). For a trusted link; both sides must agree'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'zc;peers'= {
            cand --find-timeout 'How long to listen for answers, in seconds'
            cand -w 'Keep listing, as peers come and go, until interrupted'
            cand --watch 'Keep listing, as peers come and go, until interrupted'
            cand --json 'One JSON object a line, one per peer'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'zc;completions'= {
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'zc;help'= {
            cand send 'Send files and directories (''-'' for stdin) to a receiver at HOST:PORT, or with --listen wait for a receiver to connect (with -k, for every receiver until interrupted)'
            cand recv 'Listen and receive (default [::]:9000, into the current directory, announced on the LAN), or connect to a listening sender at HOST:PORT or announced as @NAME'
            cand peers 'List the zc receivers and serving senders announced on the LAN'
            cand completions 'Print a completion script for a shell'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'zc;help;send'= {
        }
        &'zc;help;recv'= {
        }
        &'zc;help;peers'= {
        }
        &'zc;help;completions'= {
        }
        &'zc;help;help'= {
        }
    ]
    $completions[$command]
}
