//! The local UI: one self-contained page (no external assets). The page
//! long-polls `/ui/state` and redraws when a card comes or goes, a login
//! succeeds or the screen locks. What the user typed survives a redraw and a
//! failed attempt; the PIN field is emptied only after a login succeeds.
//! The workflow screens below the card panel live in [`crate::ui_workflow`].

use crate::i18n::Lang;

const STYLE: &str = r#"
body{font-family:"Noto Sans JP","Hiragino Sans",Meiryo,sans-serif;margin:0;background:#f4f6f8;color:#1d2733}
header{background:#0b5394;color:#fff;padding:12px 20px;display:flex;justify-content:space-between;align-items:center}
header h1{font-size:20px;margin:0}
header a{color:#fff}
main{max-width:760px;margin:24px auto;padding:0 16px}
.card{background:#fff;border-radius:8px;box-shadow:0 1px 3px rgba(0,0,0,.15);padding:16px 20px;margin-bottom:16px}
.card.acting{border:2px solid #0b5394}
.reader{color:#5b6b7b;font-size:13px}
.name{font-size:22px;margin:6px 0}
.kanji{font-size:16px;color:#333;margin-left:8px}
dl{display:grid;grid-template-columns:max-content 1fr;gap:4px 12px;margin:8px 0}
dt{color:#5b6b7b}
input.pin{font-size:20px;padding:6px 10px;width:12em;letter-spacing:4px}
button{font-size:16px;padding:8px 18px;border-radius:6px;border:0;background:#0b5394;color:#fff;cursor:pointer;margin:4px 4px 4px 0}
button.secondary{background:#e1e6eb;color:#1d2733}
button:disabled{opacity:.5}
.tries{color:#7a5a00;margin:6px 0}
.blocked,.error{color:#b00020;font-weight:bold;margin:8px 0}
.ok{color:#1b6e20;font-weight:bold}
.empty{text-align:center;font-size:20px;padding:48px 16px}
.lock{border:2px solid #b00020}
"#;

const SCRIPT: &str = r#"
const T = JSON.parse(document.getElementById('strings').textContent);
const CSRF = document.querySelector('meta[name=csrf]').content;
const LANG = document.documentElement.lang;
let version = null, state = null, messages = {}, busy = {}, shown = null;
function esc(s){return String(s==null?'':s).replace(/[&<>"']/g,c=>({'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;',"'":'&#39;'}[c]));}
async function call(path, body){
  const r = await fetch(path,{method:'POST',headers:{'Content-Type':'application/json','X-CSRF-Token':CSRF,'X-Lang':LANG},body:JSON.stringify(body||{})});
  let j = {}; try { j = await r.json(); } catch(e) {}
  return {ok:r.ok, status:r.status, body:j};
}
function tries(pin){
  if(!pin) return '';
  if(pin.state==='blocked') return '<div class="blocked">'+esc(T.blocked)+'</div>';
  if(pin.state==='tries_left') return '<div class="tries">'+esc(T.tries_left.replace('{n}',pin.tries_left))+'</div>';
  return '';
}
function holderHtml(h){
  if(!h) return '';
  const prof = h.kind==='assistant' ? T.assistant : (T.professions[h.profession]||h.profession||'');
  return '<div class="name">'+esc(h.name||'')+(h.name_kanji?'<span class="kanji">'+esc(h.name_kanji)+'</span>':'')+'</div>'+
    '<dl><dt>'+esc(T.profession)+'</dt><dd class="profession">'+esc(prof)+'</dd>'+
    '<dt>'+esc(T.institution)+'</dt><dd class="institution">'+esc(h.institution_kanji||h.institution||'')+'</dd>'+
    '<dt>'+esc(T.person_id)+'</dt><dd>'+esc(h.person_id||'')+'</dd></dl>';
}
function render(){
  const app = document.getElementById('app');
  const saved = {};
  app.querySelectorAll('input.pin').forEach(i=>{saved[i.dataset.reader]=i.value;});
  const focused = document.activeElement && document.activeElement.dataset ? document.activeElement.dataset.reader : null;
  let html = '';
  if(!state.watching || state.readers.length===0){
    html = '<div class="card empty">'+esc(T.no_reader)+'</div>';
  } else if(state.readers.every(r=>!r.card)){
    html = '<div class="card empty" id="insert">'+esc(T.insert_card)+'</div>';
  } else {
    const withCards = state.readers.filter(r=>r.card);
    for(const r of withCards){
      const c = r.card, acting = state.active_reader===r.reader;
      const lockedHere = state.locked && acting;
      if(state.locked && !acting) continue;
      html += '<section class="card'+(acting?' acting':'')+(lockedHere?' lock':'')+'" data-reader="'+esc(r.reader)+'">';
      html += '<div class="reader">'+esc(T.reader)+': '+esc(r.reader)+(acting&&withCards.length>1?' — '+esc(T.acting):'')+'</div>';
      if(!c.holder && !c.error) html += '<div>'+esc(T.reading)+'</div>';
      if(c.error) html += '<div class="error">'+esc(T.card_unreadable)+': '+esc(c.error)+'</div>';
      html += holderHtml(c.holder);
      if(lockedHere) html += '<div class="error" id="locked">'+esc(T.locked)+'</div>';
      if(c.session && !lockedHere){
        html += '<div class="ok session">'+esc(T.logged_in)+': <span class="person-name">'+esc(c.session.person.name)+'</span> ('+
          '<span class="person-role">'+esc(T.professions[c.session.person.role]||c.session.person.role)+'</span>, '+esc(c.session.person.institution)+')</div>';
        html += '<button class="logout secondary" data-reader="'+esc(r.reader)+'">'+esc(T.logout)+'</button>';
        if(!acting) html += '<button class="select secondary" data-reader="'+esc(r.reader)+'">'+esc(T.select)+'</button>';
      } else if(c.holder && (!c.pin || c.pin.state!=='blocked')){
        html += tries(c.pin);
        html += '<form class="login" data-reader="'+esc(r.reader)+'"><label>'+esc(T.pin_label)+' <input class="pin" type="password" inputmode="numeric" autocomplete="off" data-reader="'+esc(r.reader)+'"></label> ';
        html += '<button class="login" type="submit" data-reader="'+esc(r.reader)+'"'+(busy[r.reader]?' disabled':'')+'>'+esc(lockedHere?T.unlock:T.login)+'</button></form>';
      } else {
        html += tries(c.pin);
      }
      if(messages[r.reader]) html += '<div class="error message" role="alert">'+esc(messages[r.reader])+'</div>';
      if(busy[r.reader]) html += '<div>'+esc(T.working)+'</div>';
      html += '</section>';
    }
  }
  // Redraw only what changed, so a field being typed in is left alone.
  if(html===shown) return;
  shown = html;
  app.innerHTML = html;
  app.querySelectorAll('input.pin').forEach(i=>{ if(saved[i.dataset.reader]!==undefined) i.value=saved[i.dataset.reader]; if(focused===i.dataset.reader) i.focus(); });
  app.querySelectorAll('form.login').forEach(f=>f.addEventListener('submit',async ev=>{
    ev.preventDefault();
    const reader = f.dataset.reader, input = f.querySelector('input.pin');
    busy[reader]=true; messages[reader]=''; render();
    const res = await call('/ui/login',{reader:reader,pin:input.value});
    busy[reader]=false;
    // The state poll may have shown the new session, and the work area
    // tried its loads, before this answer gave the page its proof cookie
    // (they fail without it): load them again now that it has it.
    if(res.ok){ messages[reader]=''; const i=document.querySelector('input.pin[data-reader="'+CSS.escape(reader)+'"]'); if(i) i.value=''; say(''); refresh(); }
    else { messages[reader]=res.body.message||('HTTP error'); }
    render();
  }));
  app.querySelectorAll('button.logout').forEach(b=>b.addEventListener('click',async()=>{ await call('/ui/logout',{reader:b.dataset.reader}); }));
  app.querySelectorAll('button.select').forEach(b=>b.addEventListener('click',async()=>{ await call('/ui/select',{reader:b.dataset.reader}); }));
}
async function poll(){
  for(;;){
    try{
      const r = await fetch('/ui/state'+(version===null?'':'?since='+version),{headers:{'X-CSRF-Token':CSRF}});
      if(r.ok){
        const s = await r.json();
        // Messages belong to a card insertion: drop those of cards gone.
        for(const k of Object.keys(messages)){ if(!s.readers.some(x=>x.reader===k && x.card)) delete messages[k]; }
        if(state===null || s.version!==version){ state=s; version=s.version; render(); syncWork(); }
      } else { await new Promise(ok=>setTimeout(ok,1000)); }
    }catch(e){ await new Promise(ok=>setTimeout(ok,1000)); }
  }
}
let lastPing = 0;
function activity(){ const now=Date.now(); if(now-lastPing>5000){ lastPing=now; call('/ui/activity',{}); } }
['keydown','click','mousemove','touchstart'].forEach(e=>document.addEventListener(e,activity,{passive:true}));
"#;

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// The whole page in `lang`, carrying the CSRF token.
pub fn render(lang: Lang, csrf: &str) -> String {
    let strings = crate::i18n::ui_strings(lang);
    let title = strings["title"].as_str().unwrap_or_default().to_owned();
    let switch = strings["language"].as_str().unwrap_or_default().to_owned();
    let other = match lang {
        Lang::Ja => "en",
        Lang::En => "ja",
    };
    // `</` cannot occur in JSON produced from our own strings, but escape
    // it anyway so the script block cannot be closed early.
    let strings = strings.to_string().replace("</", "<\\/");
    format!(
        "<!doctype html>\n<html lang=\"{lang}\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"csrf\" content=\"{csrf}\"><title>{title}</title><style>{STYLE}{WORK_STYLE}</style></head>\
         <body><header><h1>{title}</h1><a href=\"/?lang={other}\" id=\"lang\">{switch}</a></header>\
         <main id=\"app\"></main><main id=\"work\"></main>\
         <script type=\"application/json\" id=\"strings\">{strings}</script>\
         <script>{SCRIPT}{WORK_SCRIPT}\npoll();</script></body></html>",
        lang = lang.tag(),
        csrf = escape(csrf),
        title = escape(&title),
        switch = escape(&switch),
        WORK_STYLE = crate::ui_workflow::STYLE,
        WORK_SCRIPT = crate::ui_workflow::SCRIPT,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_is_self_contained_and_carries_the_token() {
        for lang in [Lang::Ja, Lang::En] {
            let html = render(lang, "tok123");
            assert!(html.contains("<meta name=\"csrf\" content=\"tok123\">"));
            assert!(!html.contains("src=\"http"), "no external script");
            assert!(!html.contains("href=\"http"), "no external link");
            assert!(html.contains(&format!("<html lang=\"{}\">", lang.tag())));
        }
        assert!(render(Lang::Ja, "t").contains("カードをカードリーダーに挿入してください"));
        assert!(render(Lang::En, "t").contains("Insert your card"));
    }
}
