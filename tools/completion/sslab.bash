# bash completion for sslab: commands, each command's options, and for
# `sslab doc` the names of the platform's sections and of every component the
# loaded plugins register. Installed to share/bash-completion/completions/sslab;
# to try it from a checkout: source tools/completion/sslab.bash

_sslab_names() {
  # Section and component names, from `sslab doc --all --json` (loads the plugins once per shell).
  if [ -z "${_sslab_name_cache:-}" ]; then
    _sslab_name_cache=$("${1:-sslab}" doc --all --json 2>/dev/null |
      sed -n 's/^    "name": "\([^"]*\)",$/\1/p')
  fi
  printf '%s\n' "$_sslab_name_cache"
}

_sslab() {
  local cur prev cmd
  cur=${COMP_WORDS[COMP_CWORD]}
  prev=${COMP_WORDS[COMP_CWORD-1]}
  if [ "$COMP_CWORD" -eq 1 ]; then
    COMPREPLY=($(compgen -W "plugins check train eval doc export embed sweep compare report --help --version" -- "$cur"))
    return
  fi
  cmd=${COMP_WORDS[1]}
  local opts=""
  case "$cmd" in
    plugins) opts="--json --path --help" ;;
    check) opts="--set --print --defaults --base --help" ;;
    train) opts="--set --out --resume --or-resume --threads --no-eval --help" ;;
    eval) opts="--protocol --set --out --json --projector --help" ;;
    doc) opts="--json --all --markdown --path --help" ;;
    export) opts="--format --step --out --help" ;;
    sweep) opts="--grid --seeds --jobs --set --out --print --help" ;;
    compare) opts="--format --metric --help" ;;
    report) opts="--out --title --metric --embeddings --help" ;;
    embed) opts="--split --encoder --out --step --limit --batch-size --with-inputs --help" ;;
  esac
  case "$prev" in
    --protocol) COMPREPLY=($(compgen -W "probe finetune fewshot" -- "$cur")); return ;;
    --format) [ "$cmd" = compare ] && COMPREPLY=($(compgen -W "table csv json" -- "$cur")) ||
                COMPREPLY=($(compgen -W "safetensors torch" -- "$cur")); return ;;
    --out|--resume|--path) COMPREPLY=($(compgen -d -- "$cur")); return ;;
    --set) return ;;
  esac
  if [[ "$cur" == -* ]]; then
    COMPREPLY=($(compgen -W "$opts" -- "$cur"))
  elif [ "$cmd" = doc ]; then
    COMPREPLY=($(compgen -W "$(_sslab_names "${COMP_WORDS[0]}")" -- "$cur"))
  elif [ "$cmd" = check ] || [ "$cmd" = train ] || [ "$cmd" = sweep ]; then
    COMPREPLY=($(compgen -f -X '!*.toml' -- "$cur") $(compgen -d -- "$cur"))
  else
    COMPREPLY=($(compgen -d -- "$cur"))
  fi
}
complete -F _sslab sslab
