// Package chat renders a conversation into a model's prompt text for the chat template families
// qsparse recognises from a model's template string (tokenizer.chat_template / chat_template in
// tokenizer_config.json): ChatML, Llama-2 and Llama-3. It follows llama.cpp's
// llm_chat_apply_template, plus the default system prompt a ChatML template injects itself
// (SmolLM2, Qwen2.5), as the Jinja template would.
package chat

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// Message is one turn of a conversation.
type Message struct {
	Role    string // "system", "user" or "assistant"
	Content string
}

// Kind is a chat template family.
type Kind string

// Recognised template families.
const (
	ChatML Kind = "chatml"
	Llama2 Kind = "llama2"
	Llama3 Kind = "llama3"
)

// ErrNoTemplate is returned when a model has no chat template.
var ErrNoTemplate = errors.New("the model has no chat template")

// ErrUnknownTemplate is returned for a template of an unrecognised family.
var ErrUnknownTemplate = errors.New("unrecognised chat template")

// Template is a recognised chat template.
type Template struct {
	Kind Kind
	// DefaultSystem is the system prompt the template injects when the conversation has none
	// ("" when it injects nothing).
	DefaultSystem string
	// Llama-2 variants (llama.cpp's LLM_CHAT_TEMPLATE_LLAMA_2*): whether a system message gets
	// <<SYS>> markers, whether contents are trimmed, whether later turns start with <s>.
	System, Strip, BOSInHistory bool
}

// Detect recognises the template family of a template string.
func Detect(tmpl string) (*Template, error) {
	switch {
	case strings.TrimSpace(tmpl) == "":
		return nil, ErrNoTemplate
	case strings.Contains(tmpl, "<|im_start|>"):
		return &Template{Kind: ChatML, DefaultSystem: chatmlDefaultSystem(tmpl)}, nil
	case strings.Contains(tmpl, "<|start_header_id|>"):
		return &Template{Kind: Llama3}, nil
	case strings.Contains(tmpl, "[INST]"):
		strip := strings.Contains(tmpl, "content.strip()")
		return &Template{Kind: Llama2,
			System:       strings.Contains(tmpl, "<<SYS>>"),
			Strip:        strip,
			BOSInHistory: !strip && strings.Contains(tmpl, "bos_token + '[INST]"),
		}, nil
	}
	return nil, fmt.Errorf("%w (supported: ChatML <|im_start|>, Llama-2 [INST], Llama-3 <|start_header_id|>)", ErrUnknownTemplate)
}

// A literal system turn inside a ChatML template: '<|im_start|>system\n...<|im_end|>'.
var chatmlSystemLit = regexp.MustCompile(`<\|im_start\|>system(?:\n|\\n)((?s:.*?))<\|im_end\|>`)

func chatmlDefaultSystem(tmpl string) string {
	for _, m := range chatmlSystemLit.FindAllStringSubmatch(tmpl, -1) {
		s := m[1]
		// Skip template code ('+ message[...] +', '{{ ... }}'): only a plain literal counts.
		if strings.ContainsAny(s, "{}'\"+") || strings.TrimSpace(s) == "" {
			continue
		}
		return strings.ReplaceAll(s, `\n`, "\n")
	}
	return ""
}

// Render renders msgs with template t. With addAssistant the text ends with the opening of an
// assistant turn, ready for generation. The BOS token is not included (the tokenizer adds it).
func (t *Template) Render(msgs []Message, addAssistant bool) (string, error) {
	for _, m := range msgs {
		switch m.Role {
		case "system", "user", "assistant":
		default:
			return "", fmt.Errorf("chat: unknown role %q (want system, user or assistant)", m.Role)
		}
	}
	var b strings.Builder
	switch t.Kind {
	case ChatML:
		if t.DefaultSystem != "" && (len(msgs) == 0 || msgs[0].Role != "system") {
			b.WriteString("<|im_start|>system\n" + t.DefaultSystem + "<|im_end|>\n")
		}
		for _, m := range msgs {
			b.WriteString("<|im_start|>" + m.Role + "\n" + m.Content + "<|im_end|>\n")
		}
		if addAssistant {
			b.WriteString("<|im_start|>assistant\n")
		}
	case Llama3:
		for _, m := range msgs {
			b.WriteString("<|start_header_id|>" + m.Role + "<|end_header_id|>\n\n" + strings.TrimSpace(m.Content) + "<|eot_id|>")
		}
		if addAssistant {
			b.WriteString("<|start_header_id|>assistant<|end_header_id|>\n\n")
		}
	case Llama2:
		// As llama.cpp: the first BOS comes from the tokenizer.
		inTurn := true
		b.WriteString("[INST] ")
		for _, m := range msgs {
			content := m.Content
			if t.Strip {
				content = strings.TrimSpace(content)
			}
			if !inTurn {
				inTurn = true
				if t.BOSInHistory {
					b.WriteString("<s>[INST] ")
				} else {
					b.WriteString("[INST] ")
				}
			}
			switch m.Role {
			case "system":
				if t.System {
					b.WriteString("<<SYS>>\n" + content + "\n<</SYS>>\n\n")
				} else {
					b.WriteString(content + "\n")
				}
			case "user":
				b.WriteString(content + " [/INST]")
			default:
				b.WriteString(content + "</s>")
				inTurn = false
			}
		}
	default:
		return "", fmt.Errorf("chat: %w %q", ErrUnknownTemplate, t.Kind)
	}
	return b.String(), nil
}

// Apply detects the family of tmpl and renders a single-turn conversation: an optional system
// prompt and one user message, followed by the opening of the assistant's turn.
func Apply(tmpl, system, user string) (string, error) {
	t, err := Detect(tmpl)
	if err != nil {
		return "", fmt.Errorf("chat: %w", err)
	}
	var msgs []Message
	if system != "" {
		msgs = append(msgs, Message{Role: "system", Content: system})
	}
	msgs = append(msgs, Message{Role: "user", Content: user})
	return t.Render(msgs, true)
}
