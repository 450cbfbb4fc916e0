"""The built-in texts and voice prompts, in English and Spanish, and their words for dates."""

from __future__ import annotations

from collections.abc import Mapping

# The built-in texts. Fields starting with "_" exist only for these defaults (templates
# cannot use them): "_place" is " (Oak Street)" or "", "_a_role" "An RN", "_caregivers"
# "1 caregiver" / "12 caregivers".
_ENGLISH: Mapping[str, str] = {
    "offer_sms": (
        "{agency}: open {role} shift {window}{_place}. "
        "Reply YES {code} to take it or NO {code} to pass."
    ),
    "offer_voice": (
        "Hello, this is {agency}. {_a_role} shift is open on {window}{_place}. "
        "Press 1 to accept it, or 2 to decline."
    ),
    "confirm": "{agency}: confirmed! The {role} shift {window} is yours.",
    "filled": "{agency}: the {role} shift {window} has been filled. Thank you!",
    "already_filled": "{agency}: sorry, the {role} shift {window} was already filled.",
    "no_longer_available": "{agency}: the {role} shift {window} is no longer available.",
    "declined": "{agency}: thanks, we won't call you about the shift {window}.",
    "how_to_answer": (
        "{agency}: please reply YES {code} to take the shift {window} or NO {code} to pass."
    ),
    "released": (
        "{agency}: you are released from the {role} shift {window}. Thank you for telling us."
    ),
    "unassigned": (
        "{agency}: a coordinator has taken you off the {role} shift {window}. "
        "You are no longer scheduled for it."
    ),
    "shift_cancelled": (
        "{agency}: the {role} shift {window} has been cancelled. "
        "You are no longer scheduled for it."
    ),
    "not_eligible_overlap": (
        "{agency}: sorry, you cannot take the {role} shift {window}: "
        "you already hold a shift at that time."
    ),
    "not_eligible_role": (
        "{agency}: sorry, the shift {window} needs {_a_role_lower}, so you cannot take it."
    ),
    "not_eligible_not_offered": (
        "{agency}: sorry, the {role} shift {window} was not offered to you."
    ),
    "unfilled": "{agency}: the {role} shift {window}{_place} went unfilled; "
    "{_caregivers} contacted. {_ref}",
    "coordinator_no_accept": "{agency}: nobody has taken the {role} shift {window}{_place} "
    "yet; {_caregivers} contacted. {_ref}",
    "coordinator_closing": "{agency}: the {role} shift {window}{_place} is still open and "
    "offers close at {closes}; {_caregivers} contacted. {_ref}",
    "coordinator_released": "{agency}: the caregiver holding the {role} shift {window}{_place} "
    "dropped it; offering it again. {_ref}",
    "coordinator_notice_lost": "{agency}: the {notice} for the {role} shift {window} could not "
    "be sent to caregiver {caregiver}; please call them. {_ref}",
    "choose": "{agency}: you have several open offers ({offers}). Reply YES {example} to take "
    "offer {example}.",
    "unknown_code": "{agency}: {code} is not one of your open offers ({offers}). "
    "Reply YES {example} to take offer {example}.",
    "not_offered": "{agency}: sorry, that shift was not offered to you. "
    "Your open offers: {offers}.",
    "which_release": "{agency}: which shift do you want to release ({offers})? "
    "Reply CANCEL {example} to release shift {example}.",
    "offers_page": "{agency}: your open offers ({page}/{pages}): {offers}. "
    "Reply YES {example} to take offer {example}.",
    "opted_out": "You're unsubscribed from {agency} shift texts. Reply START to resubscribe.",
    "opted_in": "You're resubscribed to {agency} shift texts. Reply STOP to opt out.",
    "opt_out_hint": "Reply STOP to opt out.",
    "help": (
        "{agency} shift offers: reply YES to take a shift, NO to pass, with the number from "
        "our text if you have several. Reply STOP to opt out."
    ),
    "no_open_offer": "{agency}: you have no open shift offers right now.",
    "voice_press_again": (
        "Sorry, I did not get that. Press 1 to accept the shift, or 2 to decline."
    ),
    "voice_unknown_call": "Sorry, this line only calls about open shifts. Please answer by text.",
    "voice_no_answer": (
        "We did not get an answer. You can also reply to our text message. Goodbye."
    ),
    "voice_claimed": "Thank you. The shift is yours. We will confirm it by text message.",
    "voice_declined": "Thank you. We have noted that you cannot take this shift. Goodbye.",
    "voice_already_filled": "Sorry, this shift has already been filled. Thank you. Goodbye.",
    "voice_no_open_offer": "Sorry, this shift is no longer available. Goodbye.",
    "voice_unknown_sender": "Sorry, we could not match this call to you. Goodbye.",
    "voice_ambiguous": "Sorry, we could not tell which shift you mean. Please answer by text.",
    "voice_not_eligible": "Sorry, you cannot take this shift. We will text you why. Goodbye.",
    "voice_otherwise": "Sorry, we did not understand. Please answer by text. Goodbye.",
}

_SPANISH: Mapping[str, str] = {
    "offer_sms": (
        "{agency}: turno de {role} {window}{_place}. "
        "Responda SI {code} para tomarlo o NO {code} para pasar."
    ),
    "offer_voice": (
        "Hola, le llama {agency}. Hay un turno de {role} disponible el {window}{_place}. "
        "Oprima 1 para aceptarlo, o 2 para rechazarlo."
    ),
    "confirm": "{agency}: ¡confirmado! El turno de {role} {window} es suyo.",
    "filled": "{agency}: el turno de {role} {window} ya se cubrió. ¡Gracias!",
    "already_filled": "{agency}: lo sentimos, el turno de {role} {window} ya estaba cubierto.",
    "no_longer_available": "{agency}: el turno de {role} {window} ya no está disponible.",
    "declined": "{agency}: gracias, no le llamaremos por el turno {window}.",
    "how_to_answer": (
        "{agency}: responda SI {code} para tomar el turno {window} o NO {code} para pasar."
    ),
    "released": (
        "{agency}: ya no tiene asignado el turno de {role} {window}. Gracias por avisarnos."
    ),
    "unassigned": (
        "{agency}: un coordinador le retiró del turno de {role} {window}. Ya no lo tiene asignado."
    ),
    "shift_cancelled": (
        "{agency}: el turno de {role} {window} se canceló. Ya no lo tiene asignado."
    ),
    "not_eligible_overlap": (
        "{agency}: lo sentimos, no puede tomar el turno de {role} {window}: "
        "ya tiene un turno a esa hora."
    ),
    "not_eligible_role": (
        "{agency}: lo sentimos, el turno {window} requiere {role}, así que no puede tomarlo."
    ),
    "not_eligible_not_offered": (
        "{agency}: lo sentimos, el turno de {role} {window} no se le ofreció."
    ),
    "unfilled": "{agency}: el turno de {role} {window}{_place} quedó sin cubrir; "
    "se contactó a {_caregivers}. {_ref}",
    "coordinator_no_accept": "{agency}: nadie ha tomado aún el turno de {role} {window}{_place}; "
    "se contactó a {_caregivers}. {_ref}",
    "coordinator_closing": "{agency}: el turno de {role} {window}{_place} sigue abierto y las "
    "ofertas cierran a las {closes}; se contactó a {_caregivers}. {_ref}",
    "coordinator_released": "{agency}: quien tenía el turno de {role} {window}{_place} lo "
    "dejó; se ofrece de nuevo. {_ref}",
    "coordinator_notice_lost": "{agency}: no se pudo enviar {notice} del turno de {role} "
    "{window} a {caregiver}; llámele, por favor. {_ref}",
    "choose": "{agency}: tiene varias ofertas abiertas ({offers}). Responda SI {example} "
    "para tomar la oferta {example}.",
    "unknown_code": "{agency}: {code} no es una de sus ofertas abiertas ({offers}). "
    "Responda SI {example} para tomar la oferta {example}.",
    "not_offered": "{agency}: lo sentimos, ese turno no se le ofreció. "
    "Sus ofertas abiertas: {offers}.",
    "which_release": "{agency}: ¿qué turno quiere dejar ({offers})? "
    "Responda CANCEL {example} para dejar el turno {example}.",
    "offers_page": "{agency}: sus ofertas abiertas ({page}/{pages}): {offers}. "
    "Responda SI {example} para tomar la oferta {example}.",
    "opted_out": "Ya no recibirá mensajes de turnos de {agency}. Responda START para volver.",
    "opted_in": "Vuelve a recibir mensajes de turnos de {agency}. Responda STOP para salir.",
    "opt_out_hint": "Responda STOP para salir.",
    "help": (
        "{agency} ofertas de turnos: responda SI para tomar un turno, NO para pasar, con el "
        "número de nuestro mensaje si tiene varios. Responda STOP para salir."
    ),
    "no_open_offer": "{agency}: no tiene ofertas de turno abiertas ahora.",
    "voice_press_again": (
        "Perdone, no le entendí. Oprima 1 para aceptar el turno, o 2 para rechazarlo."
    ),
    "voice_unknown_call": (
        "Lo sentimos, esta línea solo llama por turnos abiertos. Por favor responda por mensaje."
    ),
    "voice_no_answer": (
        "No recibimos respuesta. También puede responder a nuestro mensaje de texto. Adiós."
    ),
    "voice_claimed": "Gracias. El turno es suyo. Se lo confirmaremos por mensaje de texto.",
    "voice_declined": "Gracias. Anotamos que no puede tomar este turno. Adiós.",
    "voice_already_filled": "Lo sentimos, este turno ya se cubrió. Gracias. Adiós.",
    "voice_no_open_offer": "Lo sentimos, este turno ya no está disponible. Adiós.",
    "voice_unknown_sender": "Lo sentimos, no pudimos asociar esta llamada con usted. Adiós.",
    "voice_ambiguous": (
        "Lo sentimos, no supimos a qué turno se refiere. Por favor responda por mensaje."
    ),
    "voice_not_eligible": (
        "Lo sentimos, no puede tomar este turno. Le diremos por qué por mensaje. Adiós."
    ),
    "voice_otherwise": "Lo sentimos, no entendimos. Por favor responda por mensaje. Adiós.",
}

DEFAULTS: Mapping[str, Mapping[str, str]] = {"en": _ENGLISH, "es": _SPANISH}

WORDS: Mapping[str, Mapping[str, str]] = {
    "en": {"none": "none", "more": "+{n} more, reply LIST", "caregiver": "caregiver",
           "caregivers": "caregivers", "shift": "Shift", "confirm": "confirmation",
           "released": "release notice", "shift_cancelled": "cancellation notice"},
    "es": {"none": "ninguna", "more": "+{n} más, responda LISTA", "caregiver": "persona",
           "caregivers": "personas", "shift": "Turno", "confirm": "la confirmación",
           "released": "el aviso de liberación", "shift_cancelled": "el aviso de cancelación"},
}  # fmt: skip
DAYS = {"en": "Mon Tue Wed Thu Fri Sat Sun", "es": "lun mar mié jue vie sáb dom"}
MONTHS = {
    "en": "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec",
    "es": "ene feb mar abr may jun jul ago sep oct nov dic",
}
