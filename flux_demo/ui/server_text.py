"""Text the server builds for a visitor (errors, warnings, notices, summaries, table headers), in the
visitor's language, read from the request's Accept-Language header.

Static labels are translated in the browser (`i18n.t`); this module covers what only exists once a
handler runs. Errors keep their English field name in front ("steps: ..."), so API callers can match
on the field whatever language they ask for. Messages raised below the UI (validation, faults, the
suite, links) are English sentences; `localize` turns them into Korean through `_KO_MESSAGES`, one
pattern per sentence the package builds, and leaves anything it does not know in English.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable

log = logging.getLogger(__name__)

LANGUAGES = ("en", "ko")


def visitor_language(request=None) -> str:
    """ "ko" or "en": the first of them in the request's Accept-Language (by q-value); "en" otherwise.
    Without `request`, the request of the Gradio event running in this thread."""
    if request is None:
        from gradio.context import LocalContext

        request = LocalContext.request.get(None)
    headers = getattr(request, "headers", None) or {}
    ranked = []
    for position, part in enumerate(str(headers.get("accept-language", "")).split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        ranked.append((-quality, position, tag.strip().lower().split("-")[0]))
    for _, _, language in sorted(ranked):
        if language in LANGUAGES:
            return language
    return "en"


# --- phrases built by the UI handlers -------------------------------------------------------------

TEXT = {
    "en": {
        "Invalid input": "Invalid input",
        "Generation failed": "Generation failed",
        "Out of GPU memory": "Out of GPU memory",
        "Model unavailable": "Model unavailable",
        "GPU unavailable": "GPU unavailable",
        "Stopped": "Stopped",
        "Too many requests": "Too many requests",
        "Content filtered": "Content filtered",
        "check_rows": (
            "| Mark | Found |\n|---|---|\n| Invisible watermark | {watermark} |\n"
            "| Content Credentials (C2PA) | {c2pa} |\n"
            "| Digital source type (IPTC) | {source} |\n| Generation settings | {settings} |"
        ),
        "check_own": "yes: this app's ({errors} of 48 bits off)",
        "check_bfl": "yes: Black Forest Labs' ({errors} of 46 bits off)",
        "check_signed": "yes: signature {state}",
        "stopped_at": "Stopped at step {step} of {steps}. The last finished result is kept.",
        "stopped_images": "Stopped at image {done} of {total}. The images finished so far are scored below.",
        "link_ignored": "Some link parameters were ignored:",
        "restored": "Restored {fields} from the PNG.",
        "summary": "{name} · {steps} steps · {width}×{height} · {seconds:.2f} s · seed {seed}",
        "summary_device": " · {device} {dtype}",
        "ok": "ok",
        "yes": "yes",
        "no": "no",
        "unreadable_no": "no: OCR cannot read {chars}",
        "seed_caption": "seed {seed}",
        "unreadable": "unreadable",
        "not_scored_summary": (
            "**Not scored:** the OCR engines here cannot read this text (Korean and kana need "
            "Tesseract with its Korean and Japanese language data)."
        ),
        "score_summary": (
            "**Mean CER {cer:.3f}** · exact match: {exact} · normalised match: {normalised} · "
            "OCR {seconds:.2f} s"
        ),
    },
    "ko": {
        "Invalid input": "잘못된 입력",
        "Generation failed": "생성 실패",
        "Out of GPU memory": "GPU 메모리 부족",
        "Model unavailable": "모델을 쓸 수 없음",
        "GPU unavailable": "GPU를 쓸 수 없음",
        "Stopped": "중지됨",
        "Too many requests": "요청이 너무 많음",
        "Content filtered": "콘텐츠 필터에 걸림",
        "check_rows": (
            "| 표시 | 결과 |\n|---|---|\n| 보이지 않는 워터마크 | {watermark} |\n"
            "| 콘텐츠 자격 증명 (C2PA) | {c2pa} |\n"
            "| 디지털 소스 유형 (IPTC) | {source} |\n| 생성 설정 | {settings} |"
        ),
        "check_own": "예: 이 앱의 워터마크 (48비트 중 {errors}비트 틀림)",
        "check_bfl": "예: Black Forest Labs의 워터마크 (46비트 중 {errors}비트 틀림)",
        "check_signed": "예: 서명 {state}",
        "stopped_at": "{steps}단계 중 {step}단계에서 중지했습니다. 마지막으로 완성된 결과는 그대로 둡니다.",
        "stopped_images": (
            "{total}장 중 {done}장에서 중지했습니다. 지금까지 만든 이미지의 점수를 아래에 보여 줍니다."
        ),
        "link_ignored": "링크의 일부 매개변수를 무시했습니다:",
        "restored": "PNG에서 {fields} 값을 불러왔습니다.",
        "summary": "{name} · {steps}스텝 · {width}×{height} · {seconds:.2f}초 · 시드 {seed}",
        "summary_device": " · {device} {dtype}",
        "ok": "완료",
        "yes": "예",
        "no": "아니오",
        "unreadable_no": "아니오: OCR이 {chars}을(를) 읽지 못합니다",
        "seed_caption": "시드 {seed}",
        "unreadable": "읽을 수 없음",
        "not_scored_summary": (
            "**채점 안 됨:** 이 서버의 OCR 엔진은 이 글자를 읽지 못합니다 (한글과 가나는 한국어·일본어 "
            "데이터가 설치된 Tesseract가 필요합니다)."
        ),
        "score_summary": (
            "**평균 CER {cer:.3f}** · 정확히 일치: {exact} · 정규화 일치: {normalised} · OCR {seconds:.2f}초"
        ),
    },
}


def say(key: str, language: str | None = None, **params) -> str:
    """The phrase `key` in `language` (default: the current visitor's), filled with `params`."""
    language = language or visitor_language()
    return TEXT[language].get(key, TEXT["en"].get(key, key)).format(**params)


# --- English sentences built below the UI, to Korean --------------------------------------------

Template = str | Callable[[re.Match], str]
_PERIODS_KO = {"second": "초", "minute": "분", "hour": "시간"}

# Whole messages without a field prefix (faults, notes, link notices, progress, Gradio's bound errors).
_KO_WHOLE: list[tuple[str, Template]] = [
    (r"Loading (?P<n>.+) \(first use\)", "{n} 불러오는 중 (처음 한 번)"),
    (r"(?P<n>.+): denoising step", "{n}: 디노이징 스텝"),
    (
        r"Model (?P<i>\d+) of (?P<c>\d+) \((?P<n>.+)\): step (?P<s>\d+) of (?P<t>\d+)",
        "모델 {c}개 중 {i}번째 ({n}): {t}스텝 중 {s}스텝",
    ),
    (r"Model (?P<i>\d+) of (?P<c>\d+): (?P<t_w>.+)", "모델 {c}개 중 {i}번째: {t_w}"),
    (r"Generating suite images", "스위트 이미지 생성 중"),
    (r"generation stopped: the request was cancelled", "생성을 중지했습니다: 요청이 취소되었습니다"),
    (
        r"content filter: the image was withheld \(score (?P<s>\S+), limit (?P<l>\S+)\); "
        r"try another prompt or seed",
        "콘텐츠 필터가 이미지를 보류했습니다 (점수 {s}, 기준 {l}). 다른 프롬프트나 시드를 시도하세요",
    ),
    (
        r"generation failed \((?P<v>\w+)\); see the server log",
        "생성에 실패했습니다 ({v}). 서버 로그를 확인하세요",
    ),
    (r"(?P<n>.+) failed \((?P<v>\w+)\); see the server log", "{n} 실패 ({v}). 서버 로그를 확인하세요"),
    (
        r"out of GPU memory: try a smaller size or fewer steps",
        "GPU 메모리가 부족합니다: 크기나 스텝 수를 줄여 보세요",
    ),
    (
        r"the GPU task was stopped, usually for running past its time limit: "
        r"try fewer steps or a smaller size",
        "GPU 작업이 중단되었습니다 (보통 시간 제한 초과): 스텝 수나 크기를 줄여 보세요",
    ),
    (r"the GPU task failed \((?P<v>.+)\)", "GPU 작업이 실패했습니다 ({v})"),
    (r"GPU quota exceeded(?P<rest>.*)", "GPU 사용 한도를 넘었습니다{rest}"),
    (
        r"no GPU became free in time; try again in a minute",
        "제때 빈 GPU가 없었습니다. 잠시 뒤 다시 시도하세요",
    ),
    (
        r"no GPU is available right now; try again in a minute",
        "지금은 쓸 수 있는 GPU가 없습니다. 잠시 뒤 다시 시도하세요",
    ),
    (
        r"the request needs more GPU time than allowed: try fewer steps or a smaller size",
        "허용된 GPU 시간보다 오래 걸리는 요청입니다: 스텝 수나 크기를 줄여 보세요",
    ),
    (
        r"rate limit: at most (?P<n>\d+) GPU requests per (?P<p>\w+) per visitor; try again in (?P<s>\d+) s",
        lambda m: (
            f"사용 한도: 방문자당 {_PERIODS_KO.get(m['p'], m['p'])}마다 GPU 요청 {m['n']}건까지입니다. "
            f"{m['s']}초 뒤에 다시 시도하세요"
        ),
    ),
    (
        r"rate limit: this request needs (?P<c>\d+) images, more than the (?P<n>\d+) per (?P<p>\w+) each "
        r"visitor may use; ask for fewer",
        lambda m: (
            f"사용 한도: 이 요청은 이미지 {m['c']}장이 필요해 방문자당 {_PERIODS_KO.get(m['p'], m['p'])}마다 "
            f"허용되는 {m['n']}장을 넘습니다. 더 적게 요청하세요"
        ),
    ),
    (
        r"(?P<f>width|height) snapped from (?P<a>\d+) to (?P<b>\d+) \(a multiple of (?P<m>\d+)\)",
        "{f}: {a}에서 {b}(으)로 맞췄습니다 ({m}의 배수)",
    ),
    (r"(?P<t_n>.+\.) The requested (?P<g>\S+) was not used\.", "{t_n} 요청한 값 {g}은(는) 쓰지 않았습니다."),
    (
        r"(?P<n>.+) ignores guidance: it always runs at (?P<g>\S+)\.",
        "{n}은(는) 가이던스를 쓰지 않습니다: 항상 {g}(으)로 실행합니다.",
    ),
    (
        r"(?P<n>.+): distilled guidance (?P<a>\S+)–(?P<b>\S+), default (?P<d>\S+)\.",
        "{n}: 증류 가이던스 {a}–{b}, 기본값 {d}.",
    ),
    (r"Ignored (?P<k>\w+)=(?P<v>.*?): (?P<t_m>.+)", "{k}={v} 무시됨: {t_m}"),
    (r"Value (?P<v>\S+) is less than minimum value (?P<m>\S+)\.", "값 {v}은(는) 최솟값 {m}보다 작습니다."),
    (r"Value (?P<v>\S+) is greater than maximum value (?P<m>\S+)\.", "값 {v}은(는) 최댓값 {m}보다 큽니다."),
    (
        r"Value: (?P<v>.+) \(type: .*\) is not in the list of choices: (?P<l>.+)",
        "값 {v}은(는) 선택지 {l}에 없습니다",
    ),
]

# The part after "field: " of `InvalidInput` and the widgets' own refusals.
_KO_AFTER_FIELD: list[tuple[str, Template]] = [
    (r"must be a number \((?P<t_a>.*)\), got (?P<v>.+)", "숫자여야 합니다 ({t_a}). 받은 값: {v}"),
    (
        r"must be a finite number \((?P<t_a>.*)\), got (?P<v>.+)",
        "유한한 숫자여야 합니다 ({t_a}). 받은 값: {v}",
    ),
    (r"must be a whole number \((?P<t_a>.*)\), got (?P<v>.+)", "정수여야 합니다 ({t_a}). 받은 값: {v}"),
    (
        r"must be an integer from (?P<a>\S+) to (?P<b>\S+), got (?P<v>.+)",
        "{a}부터 {b}까지의 정수여야 합니다. 받은 값: {v}",
    ),
    (
        r"must be a number from (?P<a>\S+) to (?P<b>\S+), got (?P<v>.+)",
        "{a}부터 {b}까지의 숫자여야 합니다. 받은 값: {v}",
    ),
    (r"must be at most (?P<n>\d+) characters, got (?P<v>\d+)", "최대 {n}자까지입니다. 받은 길이: {v}자"),
    (r"must not contain control characters", "제어 문자를 넣을 수 없습니다"),
    (
        r"must be valid Unicode text \(it contains a lone surrogate\)",
        "올바른 유니코드 텍스트여야 합니다 (짝이 없는 서로게이트 문자가 있습니다)",
    ),
    (r"is required: describe the image you want", "필수 항목입니다: 원하는 이미지를 설명하세요"),
    (
        r"is required: type the text the image should show",
        "필수 항목입니다: 이미지에 보여야 할 글자를 입력하세요",
    ),
    (r"is required: upload the image to score", "필수 항목입니다: 채점할 이미지를 올리세요"),
    (r"is required: upload the image to check", "필수 항목입니다: 확인할 이미지를 올리세요"),
    (r"must be one of (?P<l>.+), got (?P<v>.+)", "다음 중 하나여야 합니다: {l}. 받은 값: {v}"),
    (r"must be one of (?P<l>.+)", "다음 중 하나여야 합니다: {l}"),
    (
        r"must be from (?P<a>\S+) to (?P<b>\S+) for (?P<m>.+?)(?:, got (?P<v>.+))?",
        lambda m: (
            f"{m['m']}에서는 {m['a']}부터 {m['b']}까지여야 합니다"
            + (f". 받은 값: {m['v']}" if m["v"] else "")
        ),
    ),
    (
        r"must be (?P<a>\d+) to (?P<b>\d+), in multiples of (?P<k>\d+) for (?P<m>.+?), got (?P<v>.+)",
        "{m}에서는 {a}부터 {b}까지({k}의 배수)여야 합니다. 받은 값: {v}",
    ),
    (
        r"must be 0 \(the first image's size\) or (?P<a>\d+) to (?P<b>\d+) for (?P<m>.+?), got (?P<v>.+)",
        "0(첫 이미지 크기) 또는 {m}에서는 {a}부터 {b}까지여야 합니다. 받은 값: {v}",
    ),
    (r"must be true or false", "true 또는 false여야 합니다"),
    (r"must be text, got (?P<v>.+)", "텍스트여야 합니다. 받은 형식: {v}"),
    (r"must be a table (?P<s>\{.*\}) \((?P<v>\w+)\)", "표 {s} 형식이어야 합니다 ({v})"),
    (r"must be a PNG, JPEG or WebP image", "PNG, JPEG 또는 WebP 이미지여야 합니다"),
    (
        r"must be at most (?P<a>\d+)×(?P<b>\d+) pixels, got (?P<w>\d+)×(?P<h>\d+)",
        "최대 {a}×{b} 픽셀입니다. 받은 크기: {w}×{h}",
    ),
    (r"could not be read \((?P<v>\w+)\)", "읽을 수 없습니다 ({v})"),
    (r"must be an image, got (?P<v>.+)", "이미지여야 합니다. 받은 형식: {v}"),
    (r"choose one or more of (?P<l>.+)", "다음 중 하나 이상을 고르세요: {l}"),
    (r"each model may be chosen once", "각 모델은 한 번만 고를 수 있습니다"),
    (r"rows must be \[model, steps, guidance\]", "각 행은 [model, steps, guidance] 형식이어야 합니다"),
    (r"name one or more models", "모델을 하나 이상 지정하세요"),
    (
        r"put the text to render in quotes, for example: (?P<e>.+) \(use the prompt helper to write one\)",
        '이미지에 넣을 글자를 따옴표로 감싸세요. 예: "OPEN"이라고 쓰인 네온 간판 '
        "(프롬프트 만들기 도구를 써도 됩니다)",
    ),
    (
        r"a run makes at most (?P<n>\d+) images; (?P<c>\d+) prompts × (?P<m>\d+) models is (?P<t>\d+): "
        r"choose fewer prompts or models",
        "한 번에 최대 {n}장까지 만듭니다. 프롬프트 {c}개 × 모델 {m}개는 {t}장입니다: "
        "프롬프트나 모델을 줄이세요",
    ),
    (
        r"enter the words the image should show \(got an empty string\)",
        "이미지에 보여야 할 글자를 입력하세요 (비어 있음)",
    ),
    (
        r"cannot quote (?P<v>.+); it uses every quote mark (?P<q>.+)",
        "{v}을(를) 따옴표로 감쌀 수 없습니다: 따옴표 {q}를 모두 씁니다",
    ),
    (
        r"each target text must contain at least one visible character",
        "대상 글자마다 보이는 문자가 하나 이상 있어야 합니다",
    ),
    (
        r"give at least one target text, each with a visible character",
        "보이는 문자가 있는 대상 글자를 하나 이상 주세요",
    ),
    (
        r"the text to score against must have a visible character",
        "채점 기준 글자에 보이는 문자가 있어야 합니다",
    ),
    (
        r"drop a PNG made by this app \(or one with the same metadata keys\)",
        "이 앱이 만든 PNG(또는 같은 메타데이터 키를 가진 PNG)를 놓으세요",
    ),
    (r"must be a PNG file, got (?P<v>.+)", "PNG 파일이어야 합니다. 받은 형식: {v}"),
    (r"(?P<v>.+) is not a readable image", "{v}은(는) 읽을 수 있는 이미지가 아닙니다"),
    (
        r"no generation settings found; expected text keys (?P<k>.+)",
        "생성 설정이 없습니다. 필요한 텍스트 키: {k}",
    ),
    (
        r"(?P<n>.+) is unavailable right now: (?P<t_r>.+)\. "
        r"The other models still work; try this one again later\.",
        "{n}은(는) 지금 쓸 수 없습니다: {t_r}. "
        "다른 모델은 그대로 쓸 수 있으니 이 모델은 나중에 다시 시도하세요.",
    ),
    (
        r"its weights are gated: accept the licence on the Hub and set HF_TOKEN",
        "가중치 접근이 제한되어 있습니다: Hub에서 라이선스에 동의하고 HF_TOKEN을 설정하세요",
    ),
    (r"its weights could not be found", "가중치를 찾을 수 없습니다"),
    (r"its weights failed to load \((?P<v>\w+)\)", "가중치를 불러오지 못했습니다 ({v})"),
    (r"(?P<n>\w+) must be text of at most (?P<l>\d+) characters", "{n}은(는) 최대 {l}자의 텍스트여야 합니다"),
    (r"(?P<n>\w+) must be a finite number", "{n}은(는) 유한한 숫자여야 합니다"),
    (r"(?P<n>\w+) must be true or false", "{n}은(는) true 또는 false여야 합니다"),
    (r"must be a score object, got (?P<v>.+)", "점수 객체여야 합니다. 받은 형식: {v}"),
    (r"(?P<n>\w+) must be a list of at most (?P<l>\d+)", "{n}은(는) 최대 {l}개 항목의 목록이어야 합니다"),
    (r"each target must be an object", "각 대상은 객체여야 합니다"),
    (r"each box must have 4 points", "각 상자에는 점이 4개 있어야 합니다"),
    (r"each point must be \[x, y\]", "각 점은 [x, y] 형식이어야 합니다"),
]

# What `allowed` says inside the messages above ("must be a number (from 1 to 16), got str").
_KO_ALLOWED: list[tuple[str, Template]] = [
    (r"an integer from (?P<a>\S+) to (?P<b>\S+)", "{a}부터 {b}까지의 정수"),
    (r"from (?P<a>\S+) to (?P<b>\S+)", "{a}부터 {b}까지"),
    (r"(?P<a>\d+) to (?P<b>\d+), in multiples of (?P<k>\d+)", "{a}부터 {b}까지, {k}의 배수"),
    (r"(?P<a>\d+) to (?P<b>\d+)", "{a}부터 {b}까지"),
    (r"a finite number", "유한한 숫자"),
    (r"a number", "숫자"),
    (r"", ""),
]

_FIELD = re.compile(r"(?P<field>[a-z_]+(?: for [\w.\-]+)?): (?P<rest>.+)", re.S)


def _compile(table):
    return [(re.compile(pattern, re.S), template) for pattern, template in table]


_WHOLE, _AFTER_FIELD, _ALLOWED = _compile(_KO_WHOLE), _compile(_KO_AFTER_FIELD), _compile(_KO_ALLOWED)


def _apply(table, text: str) -> str | None:
    for pattern, template in table:
        match = pattern.fullmatch(text)
        if match is None:
            continue
        if callable(template):
            return template(match)
        values = {
            name: (_translate(value) if name.startswith("t_") else value) if value is not None else ""
            for name, value in match.groupdict().items()
        }
        return template.format(**values)
    return None


def _translate(text: str) -> str:
    """Korean for one English sentence built by the package; the sentence itself when unknown."""
    found = _apply(_WHOLE, text) or _apply(_ALLOWED, text)
    if found is not None:
        return found
    match = _FIELD.fullmatch(text)
    if match:
        rest = _apply(_AFTER_FIELD, match["rest"])
        if rest is not None:
            return f"{match['field']}: {rest}"
    rest = _apply(_AFTER_FIELD, text)
    if rest is not None:
        return rest
    log.debug("no Korean for server message %r", text[:200])
    return text


def localize(message: str, language: str | None = None) -> str:
    """`message` (English, built by the package) in `language` (default: the current visitor's).
    An error's leading field name stays in English."""
    language = language or visitor_language()
    if language == "en":
        return message
    return _translate(message).replace("(offline tiny preview)", "(오프라인 소형 미리보기)")
